import { taskRuntimeOf } from '../../src/config';
import { startTask } from '../../src/temporal/client';
import type { taskWorkflow } from '../../workflows';
import type { TaskRuntime } from '../../contracts';
import { BARE_ACTIVITIES, bareWorkflow } from '../baseline/workflows';
import { cpuBetween, describeCpu, totalMs, type CpuTotals } from '../support/cpu';
import { historyShape, stepLines, stepTimings, type HistoryShape } from '../support/history';
import { transactionsCommitted } from '../support/ledgerReads';
import { benchWorkerBase, cpuOf, STARTERS, type PipelineContext, type Verdicts } from '../support/pipelineContext';
import { ms, verdict } from '../support/stats';
import { benchTask, taskIds } from '../support/tasks';
import { runConcurrently, sleep, within } from '../support/wait';
import { bundleBareWorkflows, startBareWorker, startBenchWorker } from '../support/workers';

// Targets from the issue.
const RATIO_TARGET = 1.5;
const EVENTS_TARGET = 20;
const WORKFLOW_TASKS_TARGET = 4;

// Open loop: STARTERS clients starting tasks as fast as they can.
const THROUGHPUT_TASKS = 200;
const WARMUP_TASKS = 20;
const THROUGHPUT_RUN_TIMEOUT_MS = 120_000;
const TIMING_SAMPLE = 40;
// A busy PostgreSQL backend publishes its statistics at most once a second: the count is approximate.
const PG_STATS_LAG_MS = 1200;

export type ThroughputRun = {
  side: 'ours' | 'bare';
  taskIds: string[];
  seconds: number;
  tasksPerS: number;
  /** CPU of the bench process, the Temporal engine and PostgreSQL backends together, a task. */
  cpuMsPerTask: number;
  devServerMsPerTask: number | null;
  /** The run's CPU by process, in all. */
  used: CpuTotals;
  cpu: string;
  pgTransactionsPerTask: number;
  failed: number;
};

/** Our better run: what the peer is held against. */
export type OurThroughput = Pick<ThroughputRun, 'tasksPerS' | 'cpuMsPerTask' | 'devServerMsPerTask'>;

/** Every run of both sides, our better run, and what one task of each side asked of Temporal. */
export type ThroughputResult = { ours: OurThroughput; runs: ThroughputRun[]; shape: HistoryShape; bareShape: HistoryShape };

/** (1) Throughput: our tasks against the bare baseline, alternating runs, and where a task's time goes. */
export async function throughput(ctx: PipelineContext, verdicts: Verdicts): Promise<ThroughputResult> {
  console.log(
    `\n(1) throughput: ${THROUGHPUT_TASKS} tasks from ${STARTERS} concurrent starters, first start to last completion;` +
      ` ours = taskWorkflow with admission, ledger and a no-op runner, bare = the fixed baseline of ${BARE_ACTIVITIES} remote no-op activities;` +
      ' same Temporal server, both workers in this process',
  );
  const ours = await startBenchWorker({
    ...benchWorkerBase(ctx),
    name: `throughput-${ctx.stamp}`,
    env: { OPSLEDGER_AGENT_REPORT_S: '1' },
  });
  try {
    const bareQueue = `bench-bare-${ctx.stamp}`;
    const bare = await startBareWorker({ connection: ctx.connection, taskQueue: bareQueue, workflowCode: await bundleBareWorkflows() });
    try {
      const runtime = taskRuntimeOf(ours.config);
      const compared = await compareThroughput(ctx, ourStarter(ctx, runtime), bareStarter(ctx, runtime, bareQueue), verdicts);
      reportThroughput(compared.runs, verdicts);
      for (const run of compared.runs.slice(-2)) await reportSteps(ctx, run);
      const ourRuns = compared.runs.filter((run) => run.side === 'ours');
      return { ...compared, ours: ourRuns.reduce((best, run) => (run.tasksPerS > best.tasksPerS ? run : best)) };
    } finally {
      await bare.stop();
    }
  } finally {
    await ours.stop();
  }
}

/** A warm-up for each side, then ours, bare, ours, bare, so drift over the run hits both alike. */
async function compareThroughput(ctx: PipelineContext, ours: StartTask, bare: StartTask, verdicts: Verdicts): Promise<Omit<ThroughputResult, 'ours'>> {
  const starters = { ours, bare };
  const ourWarmup = await measure(ctx, 'ours', 'warmup', WARMUP_TASKS, ours);
  const shape = await historyShape(ctx.temporal, ourWarmup.taskIds[0]!);
  const bareWarmup = await measure(ctx, 'bare', 'warmup', WARMUP_TASKS, starters.bare);
  const bareShape = await historyShape(ctx.temporal, bareWarmup.taskIds[0]!);
  reportShape(shape, bareShape, verdicts);
  const runs: ThroughputRun[] = [];
  for (const round of [1, 2]) {
    for (const side of ['ours', 'bare'] as const) {
      const run = await measure(ctx, side, `run${round}`, THROUGHPUT_TASKS, starters[side]);
      runs.push(run);
      console.log(
        `  ${side} run ${round}: ${run.tasksPerS.toFixed(1)} tasks/s (${run.seconds.toFixed(2)} s${run.failed ? `, ${run.failed} did not succeed` : ''})`,
      );
      console.log(`    ${run.cpu}; PostgreSQL transactions a task about ${run.pgTransactionsPerTask.toFixed(1)}`);
    }
  }
  return { runs, shape, bareShape };
}

/** What one admitted task asks of Temporal, read from a warm-up task's history. */
function reportShape(shape: HistoryShape, bareShape: HistoryShape, verdicts: Verdicts): void {
  console.log(
    `  one task of ours: ${shape.activities.length} activities through the server (${shape.activities.join(', ')}),` +
      ` ${shape.localActivities.length} local activities (${shape.localActivities.join(', ')}),` +
      ` ${shape.searchAttributeUpserts} search-attribute upserts, ${shape.events} history events, ${shape.workflowTasks} workflow tasks;` +
      ` bare: ${bareShape.activities.length} no-op activities, ${bareShape.events} history events, ${bareShape.workflowTasks} workflow tasks`,
  );
  verdicts.push(
    verdict('history events a task', shape.events <= EVENTS_TARGET, `${shape.events} (target <= ${EVENTS_TARGET}; bare ${bareShape.events})`),
    verdict(
      'workflow tasks a task',
      shape.workflowTasks <= WORKFLOW_TASKS_TARGET,
      `${shape.workflowTasks} (target <= ${WORKFLOW_TASKS_TARGET}; bare ${bareShape.workflowTasks})`,
    ),
  );
}

function reportThroughput(runs: ThroughputRun[], verdicts: Verdicts): void {
  const best = (side: ThroughputRun['side']) => Math.max(...runs.filter((r) => r.side === side).map((r) => r.tasksPerS));
  const ratio = best('ours') / best('bare');
  const failed = runs.reduce((sum, r) => sum + r.failed, 0);
  const figures = `ours ${best('ours').toFixed(1)} tasks/s, bare ${best('bare').toFixed(1)} tasks/s`;
  console.log(`  better of two runs: ${figures}, ratio ${ratio.toFixed(2)}`);
  const cheapest = (side: ThroughputRun['side']) => Math.min(...runs.filter((r) => r.side === side).map((r) => r.cpuMsPerTask));
  console.log(
    `  CPU a task (lower of two runs): ours ${ms(cheapest('ours'))}, bare ${ms(cheapest('bare'))};` +
      ` bare/ours ${(cheapest('bare') / cheapest('ours')).toFixed(2)}, the ratio a CPU-bound machine tends to, whatever else runs on it`,
  );
  verdicts.push(
    verdict(
      'throughput ratio ours/bare (better of two runs each)',
      ratio >= RATIO_TARGET && failed === 0,
      `${ratio.toFixed(2)} (target >= ${RATIO_TARGET}; ${figures}${failed ? `; ${failed} tasks did not succeed` : ''})`,
    ),
  );
}

/** Where one task's wall time goes, from the histories of a sample of a run's tasks. */
async function reportSteps(ctx: PipelineContext, run: ThroughputRun): Promise<void> {
  const every = Math.max(1, Math.floor(run.taskIds.length / TIMING_SAMPLE));
  const sample = run.taskIds.filter((_, i) => i % every === 0).slice(0, TIMING_SAMPLE);
  const steps = await stepTimings(ctx.temporal, sample);
  console.log(
    `  ${run.side}, where a task's time goes (mean of ${sample.length} tasks of its last run;` +
      ' wait = scheduled -> picked up by a worker, run = picked up -> completed):',
  );
  for (const line of stepLines(steps, sample.length, 'task')) console.log(`    ${line}`);
}

/** Ours starts like the API does (startTask: search attributes, id reuse policy). */
function ourStarter(ctx: PipelineContext, runtime: TaskRuntime): StartTask {
  return async (taskId) => {
    await startTask(ctx.temporal, benchTask(taskId, runtime));
    const handle = ctx.temporal.workflow.getHandle<typeof taskWorkflow>(taskId);
    return { done: handle.result().then((result) => result.status === 'succeeded') };
  };
}

/** The baseline is a plain start on its own task queue. */
function bareStarter(ctx: PipelineContext, runtime: TaskRuntime, taskQueue: string): StartTask {
  return async (taskId) => {
    const handle = await ctx.temporal.workflow.start(bareWorkflow, {
      taskQueue,
      workflowId: taskId,
      args: [benchTask(taskId, runtime)],
    });
    return { done: handle.result().then(() => true) };
  };
}

/** Resolves once the task is started; `done` settles with its result (true: it succeeded). */
type StartTask = (taskId: string) => Promise<{ done: Promise<boolean> }>;

/**
 * Starts `count` tasks from STARTERS loops and waits for every result. Open loop: a starter waits
 * for its start to be accepted, not for the task to end, so up to `count` tasks are in flight.
 */
async function measure(
  ctx: PipelineContext,
  side: ThroughputRun['side'],
  label: string,
  count: number,
  start: StartTask,
): Promise<ThroughputRun> {
  const ids = taskIds(`bench-${side}-${label}-${ctx.stamp}`, count);
  let started = 0;
  let completed = 0;
  let failed = 0;
  const results: Promise<void>[] = [];
  let abandoned = false;
  const cpuBefore = cpuOf(ctx);
  const transactionsBefore = await transactionsCommitted(ctx.statsDb, ctx.services.database);
  const t0 = performance.now();
  const work = (async () => {
    await runConcurrently(count, STARTERS, async (i) => {
      const { done } = await start(ids[i]!);
      started += 1;
      results.push(
        done.then(
          (ok) => {
            completed += 1;
            if (!ok) failed += 1;
          },
          () => {
            completed += 1;
            failed += 1;
          },
        ),
      );
    }, () => abandoned);
    await Promise.all(results);
  })();
  await within(work, THROUGHPUT_RUN_TIMEOUT_MS, `${side} ${label}`, () => {
    abandoned = true;
    return `${started}/${count} started, ${completed} completed`;
  });
  const seconds = (performance.now() - t0) / 1000;
  const used = cpuBetween(cpuBefore, cpuOf(ctx));
  await sleep(PG_STATS_LAG_MS);
  const transactions = (await transactionsCommitted(ctx.statsDb, ctx.services.database)) - transactionsBefore;
  return {
    side,
    taskIds: ids,
    seconds,
    tasksPerS: count / seconds,
    cpuMsPerTask: totalMs(used) / count,
    devServerMsPerTask: used.devServer === null ? null : used.devServer / count,
    used,
    cpu: describeCpu(used, count),
    pgTransactionsPerTask: transactions / count,
    failed,
  };
}
