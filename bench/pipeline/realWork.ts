import { spawn } from 'node:child_process';
import path from 'node:path';
import { createAnsibleRunner, playbookEnvironment } from '../../activities/ansibleRunner';
import { gpuMemoryByPid } from '../../src/admission/hostCapacity';
import { taskRuntimeOf } from '../../src/config';
import { projectRoot } from '../../src/paths';
import { startTask } from '../../src/temporal/client';
import type { taskWorkflow } from '../../workflows';
import { cpuBetween, describeCpu, totalMs, type CpuTotals } from '../support/cpu';
import { benchWorkerBase, cpuOf, type PipelineContext, type Verdicts } from '../support/pipelineContext';
import { stepLines, stepTimings } from '../support/history';
import { ms, verdict } from '../support/stats';
import { benchTask, taskIds } from '../support/tasks';
import { runConcurrently, within } from '../support/wait';
import { startBenchWorker } from '../support/workers';

// Targets from the issue.
const THROUGHPUT_TARGET = 0.85;
const OVERHEAD_TARGET_S = 0.15;

const RUNS = 30;
const CONCURRENCY = 2;
const PLAYBOOK = 'ping.yml';
const INVENTORY = 'localhost,';
const EXTRA_VARS = { message: 'bench' };
const SIDE_TIMEOUT_MS = 240_000;
const playbooksDir = path.join(projectRoot, 'playbooks');

type Side = { runsPerMin: number; cpuSPerRun: number; used: CpuTotals; failed: number };

/**
 * (2) Real work: the same RUNS runs of a small real playbook, CONCURRENCY at a time, as bare
 * `ansible-playbook` and through opsledger (submit, admission, ledger, the ansible runner with its
 * wrapper, heartbeats and sampling). Both spawn ansible-playbook from this process, so the
 * playbooks' CPU is this process's children's either way.
 */
export async function realWork(ctx: PipelineContext, verdicts: Verdicts): Promise<void> {
  console.log(`\n(2) real work: ${RUNS} runs of ${PLAYBOOK}, ${CONCURRENCY} at a time, bare ansible-playbook against opsledger`);
  const bareWalls: number[] = [];
  const bare = await measureSide(ctx, 'bare', () => bareRuns(bareWalls));
  const ourIds = taskIds(`bench-real-${ctx.stamp}`, RUNS);
  const ours = await measureSide(ctx, 'ours', () => opsledgerRuns(ctx, ourIds));
  await reportWhereTimeGoes(ctx, ourIds, bareWalls);
  const ratio = ours.runsPerMin / bare.runsPerMin;
  const overheadS = ours.cpuSPerRun - bare.cpuSPerRun;
  verdicts.push(
    verdict(
      'real work throughput ours/bare',
      ratio >= THROUGHPUT_TARGET && ours.failed === 0 && bare.failed === 0,
      `${ratio.toFixed(2)} (target >= ${THROUGHPUT_TARGET}; ours ${ours.runsPerMin.toFixed(0)} runs/min, bare ${bare.runsPerMin.toFixed(0)})`,
    ),
    verdict(
      'real work CPU-seconds a run on top of bare',
      overheadS <= OVERHEAD_TARGET_S,
      `${overheadS.toFixed(2)} s (target <= ${OVERHEAD_TARGET_S}; ours ${ours.cpuSPerRun.toFixed(2)} s, bare ${bare.cpuSPerRun.toFixed(2)} s)`,
    ),
  );
}

async function measureSide(ctx: PipelineContext, name: string, runAll: () => Promise<number>): Promise<Side> {
  const before = cpuOf(ctx);
  const t0 = performance.now();
  const failed = await within(runAll(), SIDE_TIMEOUT_MS, `real work, ${name}`, () => 'still running');
  const minutes = (performance.now() - t0) / 60_000;
  const used = cpuBetween(before, cpuOf(ctx));
  const side = { runsPerMin: RUNS / minutes, cpuSPerRun: totalMs(used) / RUNS / 1000, used, failed };
  console.log(`  ${name}: ${side.runsPerMin.toFixed(1)} runs/min, ${side.cpuSPerRun.toFixed(2)} CPU-s a run${failed ? `, ${failed} failed` : ''}`);
  console.log(`    ${describeCpu(used, RUNS)}`);
  return side;
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

/** Bare: ansible-playbook itself, with the settings our runner gives it; returns how many runs failed, and keeps each run's wall time. */
async function bareRuns(walls: number[]): Promise<number> {
  let failed = 0;
  await runConcurrently(RUNS, CONCURRENCY, async () => {
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

/** Through opsledger: our worker with the real ansible runner; each task started as the API does. */
async function opsledgerRuns(ctx: PipelineContext, ids: string[]): Promise<number> {
  const worker = await startBenchWorker({
    ...benchWorkerBase(ctx),
    runner: createAnsibleRunner({ playbooksDir, outputTailLines: 50, gpuMemoryByPid }),
    name: `realwork-${ctx.stamp}`,
    env: { OPSLEDGER_AGENT_REPORT_S: '1' },
  });
  try {
    const runtime = taskRuntimeOf(worker.config);
    let failed = 0;
    await runConcurrently(RUNS, CONCURRENCY, async (i) => {
      await startTask(ctx.temporal, benchTask(ids[i]!, runtime, { playbook: PLAYBOOK, inventory: INVENTORY, extraVars: EXTRA_VARS }));
      const result = await ctx.temporal.workflow.getHandle<typeof taskWorkflow>(ids[i]!).result();
      if (result.status !== 'succeeded') failed += 1;
    });
    return failed;
  } finally {
    await worker.stop();
  }
}
