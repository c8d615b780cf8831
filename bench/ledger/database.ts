import { Client } from 'pg';
import { cleanupOnExit } from '../support/cleanup';
import { createBenchDatabase } from '../support/postgres';

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
  const { stops, close } = cleanupOnExit('the ledger bench: dropping its database');
  try {
    return { ...(await createBenchDatabase(stops, 'opsledger_ledgerbench')), close };
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
