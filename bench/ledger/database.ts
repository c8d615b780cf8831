import { Client } from 'pg';
import { ensureDatabase } from '../../src/db/embeddedPostgres';
import { migrate } from '../../src/db/migrate';
import { choosePostgres, dropDatabase, withDatabase } from '../support/postgres';

const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export type LedgerBenchDatabase = {
  /** The bench's own fresh, migrated database, as its owner. */
  url: string;
  /** Its name, `opsledger_ledgerbench_<time>`. */
  name: string;
  /** Where PostgreSQL came from, for the report header. */
  postgres: string;
  /** Drops the database (WITH (FORCE)) and stops an embedded server; safe to call twice. */
  close(): Promise<void>;
};

/**
 * A fresh database for the ledger bench, migrated with the project's own runner, on DATABASE_URL's
 * server, the local PostgreSQL, or an embedded one. Unlike bench/support/services.ts it starts no
 * Temporal dev server: the ledger bench only needs PostgreSQL. Ctrl-C or a crash still drops it.
 */
export async function startLedgerBenchDatabase(): Promise<LedgerBenchDatabase> {
  const stops: (() => Promise<void>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const signal of EXIT_SIGNALS) process.off(signal, onSignal);
      process.off('uncaughtException', onCrash);
      process.off('unhandledRejection', onCrash);
      for (const stop of stops.reverse()) {
        await stop().catch((err: Error) => console.error(`cleanup step failed: ${err.message}`));
      }
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`${signal}: dropping the ledger bench database`);
    void close().then(() => process.exit(130));
  };
  const onCrash = (err: unknown) => {
    console.error(`ledger bench crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    void close().then(() => process.exit(1));
  };
  for (const signal of EXIT_SIGNALS) process.on(signal, onSignal);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  try {
    const { serverUrl, postgres } = await choosePostgres(stops);
    const name = `opsledger_ledgerbench_${Date.now()}`;
    const adminUrl = withDatabase(serverUrl, 'postgres');
    await ensureDatabase(adminUrl, name);
    stops.push(() => dropDatabase(adminUrl, name));
    const url = withDatabase(serverUrl, name);
    await migrate(url);
    return { url, name, postgres, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The owner's connection for loading the fixture and reading plans, with a statement timeout. */
export async function ownerClient(url: string, timeoutMs: number): Promise<Client> {
  const client = new Client({ connectionString: url, statement_timeout: timeoutMs, application_name: 'opsledger-ledgerbench' });
  // Dropping the database WITH (FORCE) at the end ends this connection; that is expected, not a crash.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}
