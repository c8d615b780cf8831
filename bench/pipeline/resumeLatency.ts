import { taskRuntimeOf } from '../../src/config';
import { startTask } from '../../src/temporal/client';
import type { taskWorkflow } from '../../workflows';
import type { TaskStatus, TaskWorkflowInput } from '../../contracts';
import { hasRow, heartbeatAtUs, rowsOf } from '../support/ledgerReads';
import { benchWorkerBase, type PipelineContext, type Verdicts } from '../support/pipelineContext';
import { ms, percentile, verdict } from '../support/stats';
import { benchTask, taskIds } from '../support/tasks';
import { until, within } from '../support/wait';
import { ROOMY_HOST, startBenchWorker, type BenchWorker } from '../support/workers';

// Target from the issue.
const RESUME_P95_TARGET_MS = 1000;

// One task at a time.
const RESUME_ROUNDS = 100;
const RESUME_PHASE_TIMEOUT_MS = 180_000;

/** (3) Pause-to-resume latency: one paused task a round, resumed by one heartbeat. */
export async function resumeLatency(ctx: PipelineContext, verdicts: Verdicts): Promise<void> {
  console.log(
    `\n(3) pause-to-resume latency: ${RESUME_ROUNDS} sequential rounds of one task each: the agent reports no free memory,` +
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
  ctx: PipelineContext,
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
