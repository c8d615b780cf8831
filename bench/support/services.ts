import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { startTemporalDevServer } from '../../src/temporal/devServer';
import { cleanupOnExit } from './cleanup';
import { freePort } from '../../test/support/ports';
import { createBenchDatabase } from './postgres';

export type BenchServices = {
  /** The bench's own fresh, migrated database, as its owner. */
  databaseUrl: string;
  temporalAddress: string;
  /** Whose Temporal it is, for the report header: the bench's own dev server, or the one named. */
  temporal: string;
  /** Throwaway folder: the dev server's SQLite file and log, the bundles. */
  scratch: string;
  /** The bench database's name. */
  database: string;
  /** Where PostgreSQL came from, for the report header. */
  postgres: string;
  /** Drops the database, stops what was started and removes the scratch folder; safe to call twice. */
  close(): Promise<void>;
};

/** Points the bench at a Temporal server of the caller's (a production-shaped one) instead of its own dev server. */
export const BENCH_TEMPORAL_ADDRESS_ENV = 'OPSLEDGER_BENCH_TEMPORAL_ADDRESS';

/**
 * What one bench run needs, all of it its own: a fresh database `opsledger_bench_<time>` on
 * DATABASE_URL's server (or the local PostgreSQL, or an embedded one), migrated, and a Temporal
 * dev server on free ports with a throwaway SQLite file, unless OPSLEDGER_BENCH_TEMPORAL_ADDRESS
 * names a server to use (its namespace `default`, our search attributes registered on it).
 */
export async function startBenchServices(): Promise<BenchServices> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-bench-'));
  const { stops, close } = cleanupOnExit("the bench's services");
  stops.push(async () => fs.rmSync(scratch, { recursive: true, force: true }));
  try {
    const { url: databaseUrl, name: database, postgres } = await createBenchDatabase(stops, 'opsledger_bench');

    const given = process.env[BENCH_TEMPORAL_ADDRESS_ENV];
    if (given) {
      const connection = await Connection.connect({ address: given });
      try {
        await ensureSearchAttributes(connection, 'default');
      } finally {
        await connection.close();
      }
      return { databaseUrl, temporalAddress: given, temporal: `the server at ${given}`, scratch, database, postgres, close };
    }
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
    return {
      databaseUrl,
      temporalAddress: temporal.address,
      temporal: `dev server at ${temporal.address} (SQLite in ${scratch})`,
      scratch,
      database,
      postgres,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
