import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { createDb, type Db } from '../../src/db/pool';
import { connectTemporal } from '../../src/temporal/client';
import { connectWorker } from '../../src/worker';
import { cpuTotals, type CpuTotals } from './cpu';
import { createNoopRunner, type CountingNoopRunner } from './noopRunner';
import type { BenchServices } from './services';
import { bundleOurWorkflows } from './workers';

/** What the pipeline bench's phases share: its services, connections, our workflow bundle and the no-op runner. */
export type PipelineContext = {
  services: BenchServices;
  /** The bench's own reads of database statistics. */
  statsDb: Db;
  connection: NativeConnection;
  temporal: Client;
  workflowBundle: string;
  runner: CountingNoopRunner;
  stamp: string;
};

/** Connects to the services' Temporal and database and bundles our workflows, saying what it runs on. */
export async function openPipelineContext(services: BenchServices): Promise<PipelineContext> {
  console.log(`  postgres: ${services.postgres}, database ${services.database}`);
  console.log(`  temporal: ${services.temporal}`);
  // Not closed at the end: after a stall, calls still in flight retry on the client's channel and
  // grpc throws from a timer once it is closed. run.ts ends the process when the bench is done.
  const connection = await connectWorker(services.temporalAddress);
  const temporal = await connectTemporal({ address: services.temporalAddress, namespace: 'default' });
  console.log('  bundling workflows (ours from workflows/, the baseline from bench/baseline/)');
  const workflowBundle = await bundleOurWorkflows(services.scratch);
  return {
    services,
    statsDb: createDb({ connectionString: services.databaseUrl, max: 1 }),
    connection,
    temporal,
    workflowBundle,
    runner: createNoopRunner(),
    stamp: Date.now().toString(36),
  };
}

/** Each phase's PASS/FAIL line, for the summary. */
export type Verdicts = string[];

/** Concurrent starters of tasks, in the throughput runs and the drain's submissions alike. */
export const STARTERS = 10;

export function cpuOf(ctx: PipelineContext): CpuTotals {
  return cpuTotals({ devServer: ctx.services.scratch, postgres: ctx.services.database, temporalServer: ctx.services.temporalServer });
}

export function benchWorkerBase(ctx: PipelineContext) {
  return {
    databaseUrl: ctx.services.databaseUrl,
    temporalAddress: ctx.services.temporalAddress,
    connection: ctx.connection,
    temporal: ctx.temporal,
    workflowBundle: ctx.workflowBundle,
    runner: ctx.runner,
  };
}
