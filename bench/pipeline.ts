import { drain } from './pipeline/drain';
import { dbosPeer } from './pipeline/peer';
import { realWork } from './pipeline/realWork';
import { resumeLatency } from './pipeline/resumeLatency';
import { throughput, type OurThroughput } from './pipeline/throughput';
import { waiters } from './pipeline/waiters';
import { openPipelineContext, type PipelineContext, type Verdicts } from './support/pipelineContext';
import { startBenchServices } from './support/services';
import { within } from './support/wait';

/** The phases in the order they run; the peer's ratio needs our throughput, so it needs that phase. */
const PHASES: Record<string, (ctx: PipelineContext, verdicts: Verdicts, ours?: OurThroughput) => Promise<unknown>> = {
  throughput: async (ctx, verdicts) => (await throughput(ctx, verdicts)).ours,
  'real-work': realWork,
  'resume-latency': resumeLatency,
  drain,
  peer: async (ctx, verdicts, ours) => {
    if (!ours) throw new Error('the peer phase compares with ours: run it with the throughput phase');
    await dbosPeer(ctx, ours, verdicts);
  },
  waiters,
};

// The whole bench gives up after this, whatever phase it is in.
const BENCH_TIMEOUT_MS = 20 * 60_000;

/**
 * The pipeline benchmark: (1) tasks/s through taskWorkflow against a bare workflow with as many
 * no-op activities, (2) pause-to-resume latency, (3) 1,000 paused tasks released at once. It
 * starts its own PostgreSQL database and Temporal dev server and removes them at the end.
 */
export async function runPipelineBench(chosen: string[] = []): Promise<void> {
  const unknown = chosen.filter((name) => !(name in PHASES));
  if (unknown.length > 0) throw new Error(`unknown pipeline phase ${unknown.join(', ')}; phases: ${Object.keys(PHASES).join(', ')}`);
  const began = Date.now();
  console.log('pipeline bench: starting PostgreSQL database and Temporal dev server');
  const services = await startBenchServices();
  let ctx: PipelineContext | undefined;
  try {
    ctx = await openPipelineContext(services);
    const verdicts: Verdicts = [];
    let phase = 'throughput';
    let ours: OurThroughput | undefined;
    const phases = async () => {
      for (const [name, run] of Object.entries(PHASES)) {
        if (chosen.length > 0 && !chosen.includes(name)) continue;
        phase = name;
        const result = await run(ctx!, verdicts, ours);
        if (name === 'throughput') ours = result as OurThroughput;
      }
    };
    await within(phases(), BENCH_TIMEOUT_MS, 'the pipeline bench', () => `phase ${phase}; ${verdicts.length} figures done`);
    console.log(`\nsummary (${((Date.now() - began) / 1000).toFixed(0)} s in all)`);
    for (const line of verdicts) console.log(`  ${line}`);
  } finally {
    console.log('stopping the dev server and dropping the bench database');
    await ctx?.statsDb.close().catch(() => undefined);
    await services.close();
  }
}
