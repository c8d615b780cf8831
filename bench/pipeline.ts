import { createDb, type Db } from '../src/db/pool';
import { connectTemporal } from '../src/temporal/client';
import { connectWorker } from '../src/worker';
import { drain } from './pipeline/drain';
import { dbosPeer } from './pipeline/peer';
import { realWork } from './pipeline/realWork';
import { resumeLatency } from './pipeline/resumeLatency';
import { throughput } from './pipeline/throughput';
import { waiters } from './pipeline/waiters';
import { createNoopRunner } from './support/noopRunner';
import type { PipelineContext, Verdicts } from './support/pipelineContext';
import { startBenchServices } from './support/services';
import { within } from './support/wait';
import { bundleOurWorkflows } from './support/workers';

// The whole bench gives up after this, whatever phase it is in.
const BENCH_TIMEOUT_MS = 20 * 60_000;

/**
 * The pipeline benchmark: (1) tasks/s through taskWorkflow against a bare workflow with as many
 * no-op activities, (2) pause-to-resume latency, (3) 1,000 paused tasks released at once. It
 * starts its own PostgreSQL database and Temporal dev server and removes them at the end.
 */
export async function runPipelineBench(): Promise<void> {
  const began = Date.now();
  console.log('pipeline bench: starting PostgreSQL database and Temporal dev server');
  const services = await startBenchServices();
  let statsDb: Db | undefined;
  try {
    console.log(`  postgres: ${services.postgres}, database ${services.database}`);
    console.log(`  temporal: ${services.temporal}`);
    // Not closed at the end: after a stall, calls still in flight retry on the client's channel and
    // grpc throws from a timer once it is closed. run.ts ends the process when the bench is done.
    const connection = await connectWorker(services.temporalAddress);
    statsDb = createDb({ connectionString: services.databaseUrl, max: 1 });
    const temporal = await connectTemporal({ address: services.temporalAddress, namespace: 'default' });
    console.log('  bundling workflows (ours from workflows/, the baseline from bench/baseline/)');
    const ctx: PipelineContext = {
      services,
      statsDb,
      connection,
      temporal,
      workflowBundle: await bundleOurWorkflows(services.scratch),
      runner: createNoopRunner(),
      stamp: Date.now().toString(36),
    };
    const verdicts: Verdicts = [];
    let phase = 'throughput';
    const phases = async () => {
      const ours = await throughput(ctx, verdicts);
      phase = 'real work';
      await realWork(ctx, verdicts);
      phase = 'pause-to-resume latency';
      await resumeLatency(ctx, verdicts);
      phase = 'drain';
      await drain(ctx, verdicts);
      phase = 'peer';
      await dbosPeer(ctx, ours, verdicts);
      phase = 'waiting callers';
      await waiters(ctx, verdicts);
    };
    await within(phases(), BENCH_TIMEOUT_MS, 'the pipeline bench', () => `phase ${phase}; ${verdicts.length} figures done`);
    console.log(`\nsummary (${((Date.now() - began) / 1000).toFixed(0)} s in all)`);
    for (const line of verdicts) console.log(`  ${line}`);
  } finally {
    console.log('stopping the dev server and dropping the bench database');
    await statsDb?.close().catch(() => undefined);
    await services.close();
  }
}
