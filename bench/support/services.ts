import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { startTemporalDevServer } from '../../src/temporal/devServer';
import { cleanupOnExit } from './cleanup';
import { freePort } from '../../test/support/ports';
import { createBenchDatabase } from './postgres';

export type BenchServices = {
  /** The bench's own fresh, migrated database, as its owner. */
  databaseUrl: string;
  temporalAddress: string;
  /** Throwaway folder: the dev server's SQLite file and log, the bundles. */
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
  const { stops, close } = cleanupOnExit("the bench's services");
  stops.push(async () => fs.rmSync(scratch, { recursive: true, force: true }));
  try {
    const { url: databaseUrl, name: database, postgres } = await createBenchDatabase(stops, 'opsledger_bench');

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
