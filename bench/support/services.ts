import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDatabase } from '../../src/db/embeddedPostgres';
import { migrate } from '../../src/db/migrate';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { startTemporalDevServer } from '../../src/temporal/devServer';
import { choosePostgres, dropDatabase, freePort, withDatabase } from './postgres';

const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export type BenchServices = {
  /** The bench's own fresh, migrated database, as its owner. */
  databaseUrl: string;
  temporalAddress: string;
  /** Throwaway folder: dev server SQLite file and log, bundles, embedded PostgreSQL. */
  scratch: string;
  /** The bench database's name. */
  database: string;
  /** Where PostgreSQL came from, for the report header. */
  postgres: string;
  /** Drops the database, stops what was started and removes the scratch folder; safe to call twice. */
  close(): Promise<void>;
};

/**
 * What one bench run needs, all of it its own: a fresh database `opsledger_bench_<time>` on
 * DATABASE_URL's server (or the local PostgreSQL, or an embedded one), migrated, and a Temporal
 * dev server on free ports with a throwaway SQLite file.
 */
export async function startBenchServices(): Promise<BenchServices> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-bench-'));
  fs.chmodSync(scratch, 0o755); // an embedded PostgreSQL runs as the 'postgres' user when we are root
  const stops: (() => Promise<void>)[] = [async () => fs.rmSync(scratch, { recursive: true, force: true })];
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
  // Ctrl-C, or an exception nothing caught, mid-run still drops the database and stops the dev server.
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`${signal}: stopping the bench's services`);
    void close().then(() => process.exit(130));
  };
  const onCrash = (err: unknown) => {
    console.error(`bench crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    void close().then(() => process.exit(1));
  };
  for (const signal of EXIT_SIGNALS) process.on(signal, onSignal);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  try {
    const { serverUrl, postgres } = await choosePostgres(stops);
    const database = `opsledger_bench_${Date.now()}`;
    const adminUrl = withDatabase(serverUrl, 'postgres');
    await ensureDatabase(adminUrl, database);
    stops.push(() => dropDatabase(adminUrl, database));
    const databaseUrl = withDatabase(serverUrl, database);
    await migrate(databaseUrl);

    const cli = await ensureTemporalCli(process.env.TEMPORAL_CLI);
    const temporal = await startTemporalDevServer({
      cli,
      dbFile: path.join(scratch, 'temporal.sqlite'),
      logFile: path.join(scratch, 'temporal.log'),
      port: await freePort(),
      httpPort: await freePort(),
      metricsPort: await freePort(),
      namespace: 'default',
    });
    stops.push(temporal.stop);
    return { databaseUrl, temporalAddress: temporal.address, scratch, database, postgres, close };
  } catch (err) {
    await close();
    throw err;
  }
}
