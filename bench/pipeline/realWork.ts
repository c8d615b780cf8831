import { spawn } from 'node:child_process';
import path from 'node:path';
import { createAnsibleRunner, playbookEnvironment } from '../../activities/ansibleRunner';
import { gpuMemoryByPid } from '../../src/admission/hostCapacity';
import { taskRuntimeOf } from '../../src/config';
import { projectRoot } from '../../src/paths';
import { startTask } from '../../src/temporal/client';
import type { taskWorkflow } from '../../workflows';
import { addCpu, cpuBetween, describeCpu, totalMs, type CpuTotals } from '../support/cpu';
import { benchWorkerBase, cpuOf, type PipelineContext, type Verdicts } from '../support/pipelineContext';
import { stepLines, stepTimings } from '../support/history';
import { ms, verdict } from '../support/stats';
import { benchTask, taskIds } from '../support/tasks';
import { runConcurrently, within } from '../support/wait';
import { startBenchWorker, type BenchWorker } from '../support/workers';

// Targets from the issue.
const THROUGHPUT_TARGET = 0.85;
const OVERHEAD_TARGET_S = 0.15;

const RUNS_A_BLOCK = 10;
const CONCURRENCY = 2;
const PLAYBOOK = 'ping.yml';
const INVENTORY = 'localhost,';
const EXTRA_VARS = { message: 'bench' };
const BLOCK_TIMEOUT_MS = 240_000;
const playbooksDir = path.join(projectRoot, 'playbooks');

// Alternate blocks (bare, ours, bare, ours): a drift in the machine's speed over the phase falls
// on both sides alike instead of on whichever ran second.
const BLOCKS = 6;
// Each block starts with a run on every slot, not counted: ours on a worker just started (its
// workflow thread loading the bundle, its first JIT) and bare on a cold page cache would
// otherwise charge a deployment's one-off start to every run.
const WARM_UP_RUNS = CONCURRENCY;

type Block = { ms: number; used: CpuTotals };
type Side = { blocks: Block[]; failed: number };

/**
 * (2) Real work: RUNS_A_BLOCK runs of a small real playbook, CONCURRENCY at a time, as bare
 * `ansible-playbook` and through opsledger (submit, admission, ledger, the ansible runner with its
 * wrapper, heartbeats and sampling), in BLOCKS alternating blocks a side. Both spawn
 * ansible-playbook from this process, so the playbooks' CPU is this process's children's either
 * way. Our worker runs only around our blocks, so its idle time is not charged to bare.
 */
export async function realWork(ctx: PipelineContext, verdicts: Verdicts): Promise<void> {
  console.log(
    `\n(2) real work: ${RUNS_A_BLOCK} runs of ${PLAYBOOK} a block, ${CONCURRENCY} at a time, bare ansible-playbook and opsledger in alternate blocks (${BLOCKS} each), after ${WARM_UP_RUNS} uncounted runs a block`,
  );
  const bare: Side = { blocks: [], failed: 0 };
  const ours: Side = { blocks: [], failed: 0 };
  const bareWalls: number[] = [];
  const ourIds: string[] = [];
  for (let block = 1; block <= BLOCKS; block++) {
    bare.failed += await bareRuns(WARM_UP_RUNS, []);
    await measureBlock(ctx, bare, `bare, block ${block}`, () => bareRuns(RUNS_A_BLOCK, bareWalls));
    const ids = taskIds(`bench-real-${ctx.stamp}-${block}`, WARM_UP_RUNS + RUNS_A_BLOCK);
    const worker = await startRealWorkWorker(ctx, block);
    try {
      ours.failed += await opsledgerRuns(ctx, worker, ids.slice(0, WARM_UP_RUNS));
      await measureBlock(ctx, ours, `ours, block ${block}`, () => opsledgerRuns(ctx, worker, ids.slice(WARM_UP_RUNS)));
    } finally {
      await worker.stop();
    }
    ourIds.push(...ids.slice(WARM_UP_RUNS));
  }
  const [bareFigures, ourFigures] = [describeSide('bare', bare), describeSide('ours', ours)];
  await reportWhereTimeGoes(ctx, ourIds, bareWalls);
  const ratio = ourFigures.runsPerMin / bareFigures.runsPerMin;
  const overheadS = ourFigures.cpuSPerRun - bareFigures.cpuSPerRun;
  verdicts.push(
    verdict(
      'real work throughput ours/bare',
      ratio >= THROUGHPUT_TARGET && ours.failed === 0 && bare.failed === 0,
      `${ratio.toFixed(2)} (target >= ${THROUGHPUT_TARGET}; ours ${ourFigures.runsPerMin.toFixed(0)} runs/min, bare ${bareFigures.runsPerMin.toFixed(0)})`,
    ),
    verdict(
      'real work CPU-seconds a run on top of bare',
      overheadS <= OVERHEAD_TARGET_S,
      `${overheadS.toFixed(2)} s (target <= ${OVERHEAD_TARGET_S}; ours ${ourFigures.cpuSPerRun.toFixed(2)} s, bare ${bareFigures.cpuSPerRun.toFixed(2)} s)`,
    ),
  );
}

/** Runs one block, keeps its time and CPU with the side's, and prints the block's own figures. */
async function measureBlock(ctx: PipelineContext, side: Side, name: string, runAll: () => Promise<number>): Promise<void> {
  const before = cpuOf(ctx);
  const t0 = performance.now();
  const failed = await within(runAll(), BLOCK_TIMEOUT_MS, `real work, ${name}`, () => 'still running');
  const elapsed = performance.now() - t0;
  const used = cpuBetween(before, cpuOf(ctx));
  side.blocks.push({ ms: elapsed, used });
  side.failed += failed;
  const runsPerMin = (RUNS_A_BLOCK * 60_000) / elapsed;
  console.log(`  ${name}: ${runsPerMin.toFixed(1)} runs/min, ${(totalMs(used) / RUNS_A_BLOCK / 1000).toFixed(2)} CPU-s a run${failed ? `, ${failed} failed` : ''}`);
}

/** A side's figures over all its blocks, printed with where its CPU went. */
function describeSide(name: string, side: Side): { runsPerMin: number; cpuSPerRun: number } {
  const runs = side.blocks.length * RUNS_A_BLOCK;
  const ms = side.blocks.reduce((sum, block) => sum + block.ms, 0);
  const used = side.blocks.map((block) => block.used).reduce(addCpu);
  const figures = { runsPerMin: (runs * 60_000) / ms, cpuSPerRun: totalMs(used) / runs / 1000 };
  console.log(
    `  ${name}, ${runs} runs: ${figures.runsPerMin.toFixed(1)} runs/min, ${figures.cpuSPerRun.toFixed(2)} CPU-s a run${side.failed ? `, ${side.failed} failed` : ''}`,
  );
  console.log(`    ${describeCpu(used, runs)}`);
  return figures;
}

/**
 * Against a bare run's wall time, where ours spend theirs: the playbook activity (its run is the
 * playbook's own wall time plus the runner's), and the engine around it.
 */
async function reportWhereTimeGoes(ctx: PipelineContext, ourIds: string[], bareWalls: number[]): Promise<void> {
  const meanWall = bareWalls.reduce((sum, v) => sum + v, 0) / bareWalls.length;
  console.log(`  where a run's time goes (mean of ${ourIds.length}; wait = scheduled -> picked up, run = picked up -> completed):`);
  console.log(`    ${'bare ansible-playbook'.padEnd(28)} ${ms(meanWall)}`);
  for (const line of stepLines(await stepTimings(ctx.temporal, ourIds), ourIds.length, 'run', 'ours: ')) console.log(`    ${line}`);
}

/** Bare: `count` runs of ansible-playbook itself, with the settings our runner gives it; returns how many failed, and keeps each run's wall time. */
async function bareRuns(count: number, walls: number[]): Promise<number> {
  let failed = 0;
  await runConcurrently(count, CONCURRENCY, async () => {
    const t0 = performance.now();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('ansible-playbook', ['-i', INVENTORY, '-e', JSON.stringify(EXTRA_VARS), path.join(playbooksDir, PLAYBOOK)], {
        cwd: playbooksDir,
        stdio: ['ignore', 'ignore', 'ignore'],
        env: playbookEnvironment(process.env),
      });
      child.on('error', reject);
      child.on('close', resolve);
    });
    walls.push(performance.now() - t0);
    if (code !== 0) failed += 1;
  });
  return failed;
}

/** Our worker with the real ansible runner (its wrapper, heartbeats and memory sampling). */
function startRealWorkWorker(ctx: PipelineContext, block: number): Promise<BenchWorker> {
  return startBenchWorker({
    ...benchWorkerBase(ctx),
    runner: createAnsibleRunner({ playbooksDir, outputTailLines: 50, gpuMemoryByPid }),
    name: `realwork-${ctx.stamp}-${block}`,
    env: { OPSLEDGER_AGENT_REPORT_S: '1' },
  });
}

/** Through opsledger: each task started as the API does, and awaited; returns how many did not succeed. */
async function opsledgerRuns(ctx: PipelineContext, worker: BenchWorker, ids: string[]): Promise<number> {
  const runtime = taskRuntimeOf(worker.config);
  let failed = 0;
  await runConcurrently(ids.length, CONCURRENCY, async (i) => {
    await startTask(ctx.temporal, benchTask(ids[i]!, runtime, { playbook: PLAYBOOK, inventory: INVENTORY, extraVars: EXTRA_VARS }));
    const result = await ctx.temporal.workflow.getHandle<typeof taskWorkflow>(ids[i]!).result();
    if (result.status !== 'succeeded') failed += 1;
  });
  return failed;
}
