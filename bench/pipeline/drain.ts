import { taskRuntimeOf } from '../../src/config';
import { startTask } from '../../src/temporal/client';
import { FINAL_STATUSES, isFinalStatus } from '../../contracts';
import { cpuBetween, describeCpu } from '../support/cpu';
import { historyTrouble } from '../support/history';
import { countRows, dispatchChangedAtUs, pauseQueueLength, rowsOf, type RowSummary } from '../support/ledgerReads';
import type { CountingNoopRunner } from '../support/noopRunner';
import { benchWorkerBase, cpuOf, STARTERS, type PipelineContext, type Verdicts } from '../support/pipelineContext';
import { mib, verdict } from '../support/stats';
import { benchTask, taskIds } from '../support/tasks';
import { runConcurrently, until, within } from '../support/wait';
import { ROOMY_HOST, startBenchWorker, type BenchWorker } from '../support/workers';

// 1,000 paused at once, then released onto an agent with room for 20.
const DRAIN_TASKS = 1000;
const DRAIN_CAPACITY = 20;
const TASK_MEMORY_MB = 64;
const PRIORITIES = [10, 30, 50, 70, 90];
const DRAIN_SUBMIT_TIMEOUT_MS = 240_000;
const DRAIN_TIMEOUT_MS = 300_000;
const RSS_SAMPLE_MS = 100;

/** (4) 1,000 paused at once, then released: drain time, exactly once, dispatch order. */
export async function drain(ctx: PipelineContext, verdicts: Verdicts): Promise<void> {
  console.log(
    `\n(4) drain: ${DRAIN_TASKS} tasks (priorities ${PRIORITIES.join('/')}) submitted while dispatch is held, then released` +
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
    const lastEndUs = Math.max(...rows.filter((r) => isFinalStatus(r.status)).map((r) => r.atUs));
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
async function submitWhileHeld(ctx: PipelineContext, bench: BenchWorker, ids: string[], prefix: string): Promise<string[]> {
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
    const finals = mine.filter((r) => isFinalStatus(r.status));
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
