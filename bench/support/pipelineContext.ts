import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { Db } from '../../src/db/pool';
import { cpuTotals, type CpuTotals } from './cpu';
import type { CountingNoopRunner } from './noopRunner';
import type { BenchServices } from './services';

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
