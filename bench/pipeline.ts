import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { taskRuntimeOf } from '../src/config';
import { createDb, type Db } from '../src/db/pool';
import { connectTemporal, startTask } from '../src/temporal/client';
import { connectWorker } from '../src/worker';
import type { taskWorkflow } from '../workflows';
import { FINAL_STATUSES, type TaskRuntime, type TaskStatus, type TaskWorkflowInput } from '../workflows/types';
import { bareWorkflow } from './baseline/workflows';
import { cpuBetween, cpuTotals, describeCpu, type CpuTotals } from './support/cpu';
import { historyShape, historyTrouble, stepTimings } from './support/history';
import {
  countRows,
  dispatchChangedAtUs,
  hasRow,
  heartbeatAtUs,
  pauseQueueLength,
  rowsOf,
  transactionsCommitted,
  type RowSummary,
} from './support/ledgerReads';
import { createNoopRunner, type CountingNoopRunner } from './support/noopRunner';
import { startBenchServices, type BenchServices } from './support/services';
import { mib, ms, percentile, verdict } from './support/stats';
import { benchTask, taskIds } from './support/tasks';
import { runConcurrently, sleep, until, within } from './support/wait';
import {
  bundleBareWorkflows,
  bundleOurWorkflows,
  ROOMY_HOST,
  startBareWorker,
  startBenchWorker,
  type BenchWorker,
} from './support/workers';

// The whole bench gives up after this, whatever phase it is in.
const BENCH_TIMEOUT_MS = 20 * 60_000;

// Targets from the issue.
const RATIO_TARGET = 0.7;
const RESUME_P95_TARGET_MS = 1000;

// (1) throughput: open loop, 10 clients starting tasks as fast as they can.
const THROUGHPUT_TASKS = 200;
const WARMUP_TASKS = 20;
const STARTERS = 10;
const THROUGHPUT_RUN_TIMEOUT_MS = 120_000;
const TIMING_SAMPLE = 40;
// A busy PostgreSQL backend publishes its statistics at most once a second: the count is approximate.
const PG_STATS_LAG_MS = 1200;

// (2) pause-to-resume latency: one task at a time.
const RESUME_ROUNDS = 100;
const RESUME_PHASE_TIMEOUT_MS = 180_000;

// (3) 1,000 paused at once, then released onto an agent with room for 20.
const DRAIN_TASKS = 1000;
const DRAIN_CAPACITY = 20;
const TASK_MEMORY_MB = 64;
const PRIORITIES = [10, 30, 50, 70, 90];
const DRAIN_SUBMIT_TIMEOUT_MS = 240_000;
const DRAIN_TIMEOUT_MS = 300_000;
const RSS_SAMPLE_MS = 100;

type Ctx = {
  services: BenchServices;
  /** The bench's own reads of database statistics. */
  statsDb: Db;
  connection: NativeConnection;
  temporal: Client;
  workflowBundle: string;
  runner: CountingNoopRunner;
  stamp: string;
};

type Verdicts = string[];

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
    console.log(`  temporal: dev server at ${services.temporalAddress} (SQLite in ${services.scratch})`);
    // Not closed at the end: after a stall, calls still in flight retry on the client's channel and
    // grpc throws from a timer once it is closed. run.ts ends the process when the bench is done.
    const connection = await connectWorker(services.temporalAddress);
    statsDb = createDb({ connectionString: services.databaseUrl, max: 1 });
    const temporal = await connectTemporal({ address: services.temporalAddress, namespace: 'default' });
    console.log('  bundling workflows (ours from workflows/, the baseline from bench/baseline/)');
    const ctx: Ctx = {
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
      await throughput(ctx, verdicts);
      phase = 'pause-to-resume latency';
      await resumeLatency(ctx, verdicts);
      phase = 'drain';
      await drain(ctx, verdicts);
    };
    await within(phases(), BENCH_TIMEOUT_MS, 'the pipeline bench', () => `phase ${phase}; ${verdicts.length} of 3 figures done`);
    console.log(`\nsummary (${((Date.now() - began) / 1000).toFixed(0)} s in all)`);
    for (const line of verdicts) console.log(`  ${line}`);
  } finally {
    console.log('stopping the dev server and dropping the bench database');
    await statsDb?.close().catch(() => undefined);
    await services.close();
  }
}

// ---------------------------------------------------------------------------------------------
// (1) Throughput against the bare baseline

type ThroughputRun = {
  side: 'ours' | 'bare';
  taskIds: string[];
  seconds: number;
  tasksPerS: number;
  /** CPU of the bench process, dev server and PostgreSQL backends together, a task. */
  cpuMsPerTask: number;
  cpu: string;
  pgTransactionsPerTask: number;
  failed: number;
};

async function throughput(ctx: Ctx, verdicts: Verdicts): Promise<void> {
  console.log(
    `\n(1) throughput: ${THROUGHPUT_TASKS} tasks from ${STARTERS} concurrent starters, first start to last completion;` +
      ' ours = taskWorkflow with admission, ledger and a no-op runner, bare = as many no-op activities;' +
      ' same dev server, both workers in this process',
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
      const runs = await compareThroughput(ctx, ourStarter(ctx, runtime), (activities) => bareStarter(ctx, runtime, bareQueue, activities));
      reportThroughput(runs, verdicts);
      for (const run of runs.slice(-2)) await reportSteps(ctx, run);
    } finally {
      await bare.stop();
    }
  } finally {
    await ours.stop();
  }
}

/**
 * A warm-up for each side, then ours, bare, ours, bare, so drift over the run hits both alike.
 * The bare side runs as many activities as ours ran in its first warm-up task.
 */
async function compareThroughput(
  ctx: Ctx,
  ours: StartTask,
  bareWith: (activities: number) => StartTask,
): Promise<ThroughputRun[]> {
  const ourWarmup = await measure(ctx, 'ours', 'warmup', WARMUP_TASKS, ours);
  const shape = await historyShape(ctx.temporal, ourWarmup.taskIds[0]!);
  const starters = { ours, bare: bareWith(shape.activities.length) };
  const bareWarmup = await measure(ctx, 'bare', 'warmup', WARMUP_TASKS, starters.bare);
  const bareShape = await historyShape(ctx.temporal, bareWarmup.taskIds[0]!);
  console.log(
    `  one task of ours runs ${shape.activities.length} activities (${shape.activities.join(', ')}),` +
      ` ${shape.searchAttributeUpserts} search-attribute upserts, ${shape.events} history events;` +
      ` bare: ${bareShape.activities.length} no-op activities, ${bareShape.events} history events`,
  );
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
  return runs;
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
async function reportSteps(ctx: Ctx, run: ThroughputRun): Promise<void> {
  const every = Math.max(1, Math.floor(run.taskIds.length / TIMING_SAMPLE));
  const sample = run.taskIds.filter((_, i) => i % every === 0).slice(0, TIMING_SAMPLE);
  const steps = await stepTimings(ctx.temporal, sample);
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  console.log(
    `  ${run.side}, where a task's time goes (mean of ${sample.length} tasks of its last run;` +
      ' wait = scheduled -> picked up by a worker, run = picked up -> completed):',
  );
  for (const [step, { wait, run: ran }] of steps) {
    const perTask = wait.length / sample.length;
    const times = step === 'whole task' ? `${ms(mean(ran))}` : `${perTask.toFixed(0)}x a task, wait ${ms(mean(wait))}, run ${ms(mean(ran))}`;
    console.log(`    ${step.padEnd(28)} ${times}`);
  }
}

/** Ours starts like the API does (startTask: search attributes, id reuse policy). */
function ourStarter(ctx: Ctx, runtime: TaskRuntime): StartTask {
  return async (taskId) => {
    await startTask(ctx.temporal, benchTask(taskId, runtime));
    const handle = ctx.temporal.workflow.getHandle<typeof taskWorkflow>(taskId);
    return { done: handle.result().then((result) => result.status === 'succeeded') };
  };
}

/** The baseline is a plain start on its own task queue. */
function bareStarter(ctx: Ctx, runtime: TaskRuntime, taskQueue: string, activities: number): StartTask {
  return async (taskId) => {
    const handle = await ctx.temporal.workflow.start(bareWorkflow, {
      taskQueue,
      workflowId: taskId,
      args: [benchTask(taskId, runtime), activities],
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
  ctx: Ctx,
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
    cpuMsPerTask: (used.self + (used.devServer ?? 0) + (used.postgres ?? 0)) / count,
    cpu: describeCpu(used, count),
    pgTransactionsPerTask: transactions / count,
    failed,
  };
}

function cpuOf(ctx: Ctx): CpuTotals {
  return cpuTotals({ devServer: ctx.services.scratch, postgres: ctx.services.database });
}

function benchWorkerBase(ctx: Ctx) {
  return {
    databaseUrl: ctx.services.databaseUrl,
    temporalAddress: ctx.services.temporalAddress,
    connection: ctx.connection,
    temporal: ctx.temporal,
    workflowBundle: ctx.workflowBundle,
    runner: ctx.runner,
  };
}

// ---------------------------------------------------------------------------------------------
// (2) Pause-to-resume latency

async function resumeLatency(ctx: Ctx, verdicts: Verdicts): Promise<void> {
  console.log(
    `\n(2) pause-to-resume latency: ${RESUME_ROUNDS} sequential rounds of one task each: the agent reports no free memory,` +
      ' the task waits (its `paused` row), one heartbeat returns the memory; latency = `resumed` row created_at' +
      ' minus the heartbeat\'s heartbeat_at (both PostgreSQL clock)',
  );
  // No report of its own: the bench's heartbeats are the only capacity the agent has.
  const bench = await startBenchWorker({ ...benchWorkerBase(ctx), name: `resume-${ctx.stamp}`, env: { OPSLEDGER_AGENT_REPORT_S: '0' } });
  try {
    const runtime = taskRuntimeOf(bench.config);
    const ids = taskIds(`bench-resume-${ctx.stamp}`, RESUME_ROUNDS);
    const resumedMs: number[] = [];
    const dispatchedMs: number[] = [];
    let abandoned = false;
    await within(
      (async () => {
        await setAgentMemory(bench, 0);
        for (const taskId of ids) {
          if (abandoned) return;
          const round = await resumeRound(ctx, bench, benchTask(taskId, runtime), () => `${resumedMs.length} rounds done`);
          resumedMs.push(round.resumedMs);
          dispatchedMs.push(round.dispatchedMs);
        }
      })(),
      RESUME_PHASE_TIMEOUT_MS,
      'pause-to-resume rounds',
      () => {
        abandoned = true;
        return `${resumedMs.length}/${RESUME_ROUNDS} rounds`;
      },
    );
    const p95 = percentile(resumedMs, 95);
    console.log(
      `  heartbeat -> resumed row:    p50 ${ms(percentile(resumedMs, 50))}, p95 ${ms(p95)}, max ${ms(Math.max(...resumedMs))}`,
    );
    console.log(
      `  heartbeat -> dispatched row: p50 ${ms(percentile(dispatchedMs, 50))}, p95 ${ms(percentile(dispatchedMs, 95))}, max ${ms(Math.max(...dispatchedMs))}`,
    );
    verdicts.push(
      verdict('pause-to-resume p95 (one task at a time)', p95 < RESUME_P95_TARGET_MS, `${ms(p95)} (target < ${RESUME_P95_TARGET_MS} ms; ${RESUME_ROUNDS} rounds)`),
    );
  } finally {
    await bench.stop();
  }
}

/** One task waits for memory, one heartbeat frees it; the memory is taken away again once the task ended. */
async function resumeRound(
  ctx: Ctx,
  bench: BenchWorker,
  task: TaskWorkflowInput,
  reached: () => string,
): Promise<{ resumedMs: number; dispatchedMs: number }> {
  const { taskId } = task;
  await startTask(ctx.temporal, task);
  await until(async () => ((await hasRow(bench.db, taskId, 'paused')) ? true : undefined), {
    timeoutMs: 15_000, intervalMs: 10, what: `task ${taskId} waiting`, reached,
  });
  const freedAtUs = await setAgentMemory(bench, ROOMY_HOST.memoryFreeMb);
  await ctx.temporal.workflow.getHandle<typeof taskWorkflow>(taskId).result();
  const rows = await rowsOf(bench.db, taskId);
  const at = (status: TaskStatus) => rows.find((r) => r.taskId === taskId && r.status === status)?.atUs;
  const resumed = at('resumed');
  const dispatched = at('dispatched');
  if (resumed === undefined || dispatched === undefined) throw new Error(`task ${taskId} has no resumed or dispatched row`);
  await setAgentMemory(bench, 0);
  return { resumedMs: (resumed - freedAtUs) / 1000, dispatchedMs: (dispatched - freedAtUs) / 1000 };
}

/** One capacity report for the bench's agent; returns its time by the database's clock. */
async function setAgentMemory(bench: BenchWorker, memoryFreeMb: number): Promise<number> {
  await bench.admission.heartbeat({
    ...ROOMY_HOST,
    memoryFreeMb,
    agentId: bench.config.OPSLEDGER_AGENT_ID,
    pool: bench.config.OPSLEDGER_TASK_QUEUE,
    taskQueue: bench.worker.agentTaskQueue,
    labels: {},
  });
  return heartbeatAtUs(bench.db, bench.config.OPSLEDGER_AGENT_ID);
}

// ---------------------------------------------------------------------------------------------
// (3) 1,000 paused at once, then released

async function drain(ctx: Ctx, verdicts: Verdicts): Promise<void> {
  console.log(
    `\n(3) drain: ${DRAIN_TASKS} tasks (priorities ${PRIORITIES.join('/')}) submitted while dispatch is held, then released` +
      ` onto one agent with room for ${DRAIN_CAPACITY} at a time (${DRAIN_CAPACITY * TASK_MEMORY_MB} MiB free, ${TASK_MEMORY_MB} MiB a task)`,
  );
  const rss = sampleRss();
  const bench = await startBenchWorker({
    ...benchWorkerBase(ctx),
    name: `drain-${ctx.stamp}`,
    env: { OPSLEDGER_AGENT_REPORT_S: '1' },
    host: { ...ROOMY_HOST, memoryFreeMb: DRAIN_CAPACITY * TASK_MEMORY_MB },
  });
  try {
    const prefix = `bench-drain-${ctx.stamp}`;
    const ids = taskIds(prefix, DRAIN_TASKS);
    const expectedOrder = await submitWhileHeld(ctx, bench, ids, prefix);
    const cpuAtRelease = cpuOf(ctx);
    const releasedAtUs = await releaseAndDrain(bench, prefix);
    const peakRss = rss.stop();
    const cpu = describeCpu(cpuBetween(cpuAtRelease, cpuOf(ctx)), DRAIN_TASKS);

    const rows = await rowsOf(bench.db, prefix);
    const lastEndUs = Math.max(...rows.filter((r) => FINAL_STATUSES.includes(r.status)).map((r) => r.atUs));
    const drainS = (lastEndUs - releasedAtUs) / 1e6;
    const problems = [...exactlyOnceProblems(ids, rows, ctx.runner), ...dispatchedBeforeRelease(rows, releasedAtUs)];
    const overtakes = orderViolations(expectedOrder, rows, DRAIN_CAPACITY);

    console.log(`  drained in ${drainS.toFixed(2)} s after release (${(DRAIN_TASKS / drainS).toFixed(1)} tasks/s): release -> last final row`);
    console.log(`    ${cpu}`);
    console.log(
      `  exactly once: ${problems.length === 0 ? 'every task has one dispatched row, one final row (succeeded) and ran its playbook once' : `${problems.length} problems`}`,
    );
    for (const problem of problems.slice(0, 10)) {
      const trouble = await historyTrouble(ctx.temporal, problem.taskId);
      console.log(`    ${problem.text}${trouble.length ? `; its Temporal history: ${trouble.join('; ')}` : ''}`);
    }
    console.log(
      `  dispatch order (chain_seq of dispatched rows vs pause_queue order at release): ${overtakes.violations.length} violations;` +
        ` at most ${overtakes.maxOvertaken} earlier-queued tasks dispatched after a task (allowed < ${DRAIN_CAPACITY}, the tasks granted together)`,
    );
    for (const violation of overtakes.violations.slice(0, 10)) console.log(`    ${violation}`);
    console.log(
      `  peak RSS, worker + bench driver in one process (sampled every ${RSS_SAMPLE_MS} ms): ${mib(peakRss.peak)}` +
        ` (${mib(peakRss.start)} when the phase began)`,
    );
    verdicts.push(
      verdict(
        `drain of ${DRAIN_TASKS}: exactly once and in priority/age order`,
        problems.length === 0 && overtakes.violations.length === 0,
        `${drainS.toFixed(2)} s to drain, ${problems.length} exactly-once problems, ${overtakes.violations.length} order violations,` +
          ` peak RSS ${mib(peakRss.peak)}`,
      ),
    );
  } finally {
    rss.stop();
    await bench.admission.setDispatchHold(false, 'bench').catch(() => undefined);
    await bench.stop();
  }
}

/** Holds dispatch, submits every task and waits until all wait in pause_queue; returns the queue order. */
async function submitWhileHeld(ctx: Ctx, bench: BenchWorker, ids: string[], prefix: string): Promise<string[]> {
  const pool = bench.config.OPSLEDGER_TASK_QUEUE;
  const runtime = taskRuntimeOf(bench.config);
  const requirements = { cpu: 0.1, memoryMb: TASK_MEMORY_MB, gpuVramMb: 0 };
  await bench.admission.setDispatchHold(true, 'bench');
  let submitted = 0;
  let abandoned = false;
  const began = performance.now();
  const cpuBefore = cpuOf(ctx);
  await within(
    runConcurrently(
      ids.length,
      STARTERS,
      async (i) => {
        const priority = PRIORITIES[(i * 3) % PRIORITIES.length]!;
        await startTask(ctx.temporal, benchTask(ids[i]!, runtime, { priority, requirements }));
        submitted += 1;
      },
      () => abandoned,
    ),
    DRAIN_SUBMIT_TIMEOUT_MS,
    'submitting the drain tasks',
    () => {
      abandoned = true;
      return `${submitted}/${ids.length} submitted`;
    },
  );
  let queued = 0;
  let paused = 0;
  await until(
    async () => {
      queued = await pauseQueueLength(bench.db, pool);
      paused = await countRows(bench.db, prefix, ['paused']);
      return queued === ids.length && paused === ids.length ? true : undefined;
    },
    { timeoutMs: DRAIN_SUBMIT_TIMEOUT_MS, intervalMs: 250, what: 'every task waiting', reached: () => `${queued} in pause_queue, ${paused} paused rows` },
  );
  console.log(`  ${ids.length} submitted and all waiting in pause_queue after ${((performance.now() - began) / 1000).toFixed(1)} s`);
  console.log(`    ${describeCpu(cpuBetween(cpuBefore, cpuOf(ctx)), ids.length)}`);
  return (await bench.admission.queue(pool)).map((entry) => entry.taskId);
}

/** Releases dispatch and waits until every task has its final row; returns the release time (PostgreSQL clock). */
async function releaseAndDrain(bench: BenchWorker, prefix: string): Promise<number> {
  await bench.admission.setDispatchHold(false, 'bench');
  const releasedAtUs = await dispatchChangedAtUs(bench.db);
  let ended = 0;
  await until(
    async () => {
      ended = await countRows(bench.db, prefix, FINAL_STATUSES);
      return ended >= DRAIN_TASKS ? true : undefined;
    },
    { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 250, what: 'the drain', reached: () => `${ended}/${DRAIN_TASKS} ended` },
  );
  return releasedAtUs;
}

type Problem = { taskId: string; text: string };

/** Each task: one dispatched row, one final row that says succeeded, one playbook run. */
function exactlyOnceProblems(ids: string[], rows: RowSummary[], runner: CountingNoopRunner): Problem[] {
  const problems: Problem[] = [];
  for (const taskId of ids) {
    const mine = rows.filter((r) => r.taskId === taskId);
    const dispatched = mine.filter((r) => r.status === 'dispatched').length;
    const finals = mine.filter((r) => FINAL_STATUSES.includes(r.status));
    const runs = runner.runsOf(taskId);
    if (dispatched !== 1 || finals.length !== 1 || finals[0]?.status !== 'succeeded' || runs !== 1) {
      problems.push({
        taskId,
        text: `${taskId}: ${dispatched} dispatched rows, final rows [${finals.map((r) => r.status).join(', ')}], playbook ran ${runs} times`,
      });
    }
  }
  return problems;
}

function dispatchedBeforeRelease(rows: RowSummary[], releasedAtUs: number): Problem[] {
  return rows
    .filter((r) => r.status === 'dispatched' && r.atUs < releasedAtUs)
    .map((r) => ({ taskId: r.taskId, text: `${r.taskId}: dispatched ${((releasedAtUs - r.atUs) / 1000).toFixed(1)} ms before dispatch was released` }));
}

/**
 * Tasks are all the same size, so when a task is granted every task ahead of it in the queue has
 * been granted too, and those not yet dispatched still hold a reservation: a task can be
 * dispatched before at most capacity - 1 tasks that were queued ahead of it. More is a violation.
 */
function orderViolations(expected: string[], rows: RowSummary[], capacity: number): { violations: string[]; maxOvertaken: number } {
  const rank = new Map(expected.map((taskId, i) => [taskId, i]));
  const dispatchedRanks = rows.filter((r) => r.status === 'dispatched').map((r) => rank.get(r.taskId) ?? -1);
  const violations: string[] = [];
  let maxOvertaken = 0;
  dispatchedRanks.forEach((mine, position) => {
    const overtaken = dispatchedRanks.slice(position + 1).filter((later) => later < mine).length;
    maxOvertaken = Math.max(maxOvertaken, overtaken);
    if (overtaken >= capacity) {
      violations.push(`${expected[mine]} (queue position ${mine + 1}) dispatched ${position + 1}th, before ${overtaken} tasks queued ahead of it`);
    }
  });
  return { violations, maxOvertaken };
}

/** Peak resident set of this process, sampled: the worker and the bench driver share it. */
function sampleRss(): { stop(): { start: number; peak: number } } {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, RSS_SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { start, peak };
    },
  };
}
