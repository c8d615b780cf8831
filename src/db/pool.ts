import { Pool, type PoolClient, type QueryResultRow } from 'pg';
import { logger } from '../logger';

export type Db = {
  pool: Pool;
  query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  transaction<T>(work: (client: PoolClient) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  close(): Promise<void>;
};

export type TransactionOptions = {
  /**
   * A transaction-scoped advisory lock, by name, taken in the same round trip as BEGIN: the hot
   * paths (admission, the end of every task) pay one round trip for both.
   */
  advisoryLock?: string;
};

const LOCK_NAME = /^[a-z][a-z0-9_.]*$/;

/** BEGIN, and the lock where one is asked for: one simple-protocol query, so the name is checked, not bound. */
function beginStatement({ advisoryLock }: TransactionOptions = {}): string {
  if (advisoryLock === undefined) return 'BEGIN';
  if (!LOCK_NAME.test(advisoryLock)) throw new Error(`advisory lock name ${JSON.stringify(advisoryLock)} is not a plain dotted name`);
  return `BEGIN; SELECT pg_advisory_xact_lock(hashtext('${advisoryLock}'))`;
}

export type DbOptions = {
  connectionString: string;
  /** The role every connection assumes, so the application holds only the ledger's app grants. */
  role?: string;
  max?: number;
};

/**
 * Planner settings for opsledger's own sessions. random_page_cost: the ledger's indexes and recent
 * rows are read from memory or SSD, not a spinning disk (the default, 4, assumes one). At 4 the
 * planner answered "intent=rollback_prometheus, past day" with a 135,000-entry GIN bitmap instead
 * of walking 500 entries of the action index: 28 ms instead of 3 (docs/ledger.md). jit: every
 * query here reads a few hundred rows at most, yet a generous estimate (the uncounted rows of the
 * running totals, bounded by a value known only at run time) passed jit_above_cost and compiling
 * took 20 ms of a 23 ms aggregate.
 */
const SESSION_SETTINGS = ['random_page_cost=1.1', 'jit=off'];

/** One place owns the pool: the rest of the code queries through this, never the pool itself. */
export function createDb({ connectionString, role, max = 10 }: DbOptions): Db {
  const pool = new Pool({
    connectionString,
    max,
    application_name: 'opsledger',
    // Set at connection start (the role like SET ROLE), before any query can run on the connection.
    options: [...(role ? [`role=${role}`] : []), ...SESSION_SETTINGS].map((setting) => `-c ${setting}`).join(' '),
  });
  // The error of an idle client carries the whole client; its message and code say all there is.
  pool.on('error', (err: Error & { code?: string }) =>
    logger.warn({ error: err.message, code: err.code }, 'idle PostgreSQL connection failed'),
  );
  // A checked-out client whose server goes away between two queries emits 'error' with no query
  // to fail, and pg-pool listens only to idle ones: unheard, that error ended the process (the
  // soak's SIGKILL of PostgreSQL took the worker down with it). Its next query fails instead, and
  // the pool drops it on release.
  pool.on('connect', (client) =>
    client.on('error', (err: Error & { code?: string }) =>
      logger.warn({ error: err.message, code: err.code }, 'PostgreSQL connection failed while checked out'),
    ),
  );

  return {
    pool,
    async query<R extends QueryResultRow>(text: string, values?: unknown[]) {
      const started = process.hrtime.bigint();
      const result = await pool.query<R>(text, values);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (ms > 200) logger.warn({ ms, query: text.slice(0, 120) }, 'slow query');
      return result.rows;
    },
    async transaction<T>(work: (client: PoolClient) => Promise<T>, opts?: TransactionOptions) {
      const begin = beginStatement(opts);
      const client = await pool.connect();
      try {
        await client.query(begin);
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
