import type { Db } from '../../src/db/pool';
import type { TaskStatus } from '../../contracts';

/** A ledger row reduced to what the bench checks; times as epoch microseconds (PostgreSQL's clock). */
export type RowSummary = { taskId: string; status: TaskStatus; chainSeq: number; atUs: number };

const EPOCH_US = (column: string) => `(extract(epoch FROM ${column}) * 1000000)::bigint::text`;

/** Every ledger row of the tasks whose id starts with `prefix`, in chain order. */
export async function rowsOf(db: Db, prefix: string): Promise<RowSummary[]> {
  const rows = await db.query<{ task_id: string; status: TaskStatus; chain_seq: string; at_us: string }>(
    `SELECT task_id, status, chain_seq::text, ${EPOCH_US('created_at')} AS at_us
       FROM tasks WHERE left(task_id, length($1)) = $1 ORDER BY chain_seq`,
    [prefix],
  );
  return rows.map((r) => ({ taskId: r.task_id, status: r.status, chainSeq: Number(r.chain_seq), atUs: Number(r.at_us) }));
}

export async function countRows(db: Db, prefix: string, statuses: readonly TaskStatus[]): Promise<number> {
  const [row] = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM tasks WHERE left(task_id, length($1)) = $1 AND status = ANY($2)',
    [prefix, statuses],
  );
  return Number(row?.n ?? 0);
}

export async function hasRow(db: Db, taskId: string, status: TaskStatus): Promise<boolean> {
  const rows = await db.query('SELECT 1 FROM tasks WHERE task_id = $1 AND status = $2', [taskId, status]);
  return rows.length > 0;
}

export async function pauseQueueLength(db: Db, pool: string): Promise<number> {
  const [row] = await db.query<{ n: string }>('SELECT count(*) AS n FROM pause_queue WHERE pool = $1', [pool]);
  return Number(row?.n ?? 0);
}

/** When the agent's last capacity report was taken, by the database's clock. */
export async function heartbeatAtUs(db: Db, agentId: string): Promise<number> {
  const [row] = await db.query<{ at_us: string }>(`SELECT ${EPOCH_US('heartbeat_at')} AS at_us FROM agents WHERE agent_id = $1`, [
    agentId,
  ]);
  if (!row) throw new Error(`agent ${agentId} has no capacity report`);
  return Number(row.at_us);
}

/** When dispatch was last held or released, by the database's clock. */
export async function dispatchChangedAtUs(db: Db): Promise<number> {
  const [row] = await db.query<{ at_us: string }>(`SELECT ${EPOCH_US('changed_at')} AS at_us FROM dispatch_control`);
  if (!row) throw new Error('dispatch_control has no row');
  return Number(row.at_us);
}

/** Transactions committed in a database so far (every autocommit statement is one); the statistics lag by up to a second. */
export async function transactionsCommitted(db: Db, database: string): Promise<number> {
  const [row] = await db.query<{ n: string }>('SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = $1', [database]);
  return Number(row?.n ?? 0);
}
