import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { ensureSearchAttributes } from '../../src/temporal/searchAttributes';
import { startTemporalDevServer } from '../../src/temporal/devServer';
import { cleanupOnExit } from './cleanup';
import { freePort } from '../../test/support/ports';
import type { TemporalServerProcess } from './cpu';
import { createBenchDatabase } from './postgres';
import { startTemporalOnPostgres } from './temporalOnPostgres';

export type BenchServices = {
  /** The bench's own fresh, migrated database, as its owner. */
  databaseUrl: string;
  temporalAddress: string;
  /** Whose Temporal it is, for the report header: the bench's own dev server, or the one named. */
  temporal: string;
  /** The Temporal server on PostgreSQL the bench brought up, when it runs on one: its process and databases, for the CPU figures. */
  temporalServer?: TemporalServerProcess;
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
 * Which Temporal the bench runs on: its own dev server, the server at an address, or a server on
 * PostgreSQL that it brings up as `opsledger cluster up` does, with no agents and no API replicas.
 */
export type BenchTemporal = { kind: 'dev server' } | { kind: 'given'; address: string } | { kind: 'on postgres' };

/** The server OPSLEDGER_BENCH_TEMPORAL_ADDRESS names, else the bench's own dev server. */
export function temporalFromEnvironment(): BenchTemporal {
  const address = process.env[BENCH_TEMPORAL_ADDRESS_ENV];
  return address ? { kind: 'given', address } : { kind: 'dev server' };
}

/**
 * What one bench run needs, all of it its own: a fresh database `opsledger_bench_<time>` on
 * DATABASE_URL's server (or the local PostgreSQL, or an embedded one), migrated, and the Temporal
 * `temporal` says: a dev server on free ports with a throwaway SQLite file, the server at the
 * address given (its namespace `default`, our search attributes registered on it), or a server on
 * the same PostgreSQL, brought up and torn down with everything else.
 */
export async function startBenchServices(temporal: BenchTemporal = temporalFromEnvironment()): Promise<BenchServices> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-bench-'));
  const { stops, close } = cleanupOnExit("the bench's services");
  stops.push(async () => fs.rmSync(scratch, { recursive: true, force: true }));
  try {
    const { url: databaseUrl, name: database, postgres } = await createBenchDatabase(stops, 'opsledger_bench');

    if (temporal.kind === 'on postgres') {
      const server = await startTemporalOnPostgres(stops, { databaseUrl, database, dir: path.join(scratch, 'cluster') });
      return {
        databaseUrl,
        temporalAddress: server.address,
        temporal: `Temporal server on PostgreSQL at ${server.address} (databases ${server.process.databases.join(', ')})`,
        temporalServer: server.process,
        scratch,
        database,
        postgres,
        close,
      };
    }
    if (temporal.kind === 'given') {
      const connection = await Connection.connect({ address: temporal.address });
      try {
        await ensureSearchAttributes(connection, 'default');
      } finally {
        await connection.close();
      }
      return { databaseUrl, temporalAddress: temporal.address, temporal: `the server at ${temporal.address}`, scratch, database, postgres, close };
    }
    const cli = await ensureTemporalCli(process.env.TEMPORAL_CLI);
    const devServer = await startTemporalDevServer({
      cli,
      dbFile: path.join(scratch, 'temporal.sqlite'),
      logFile: path.join(scratch, 'temporal.log'),
      port: await freePort(),
      httpPort: await freePort(),
      metricsPort: await freePort(),
      namespace: 'default',
    });
    stops.push(devServer.stop);
    return {
      databaseUrl,
      temporalAddress: devServer.address,
      temporal: `dev server at ${devServer.address} (SQLite in ${scratch})`,
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
