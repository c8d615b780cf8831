import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { hashToken } from '../../src/api/auth';
import { createApp } from '../../src/api/app';
import { taskWaiters } from '../../src/api/routes/tasks';
import { taskRuntimeOf } from '../../src/config';
import { createLedgerRepository } from '../../src/ledger/repository';
import { projectRoot } from '../../src/paths';
import { startTask } from '../../src/temporal/client';
import { cancelUpdate } from '../../workflows/messages';
import { cpuBetween, type CpuTotals } from '../support/cpu';
import { benchWorkerBase, cpuOf, type PipelineContext, type Verdicts } from '../support/pipelineContext';
import { verdict } from '../support/stats';
import { benchTask } from '../support/tasks';
import { sleep, until } from '../support/wait';
import { startBenchWorker } from '../support/workers';

const WAITERS = 1000;
// The same length of time is measured with nobody waiting (twice) and with every caller waiting.
const WINDOW_MS = 10_000;
// "Nothing measurable": at most this much more of one core for the dev server while they wait.
const EXTRA_DEV_SERVER_MS_PER_S_TARGET = 10;
const TOKEN = 'bench-waiters-token';
const WAIT_TIMEOUT_MS = 120_000;

/**
 * (6) 1,000 orchestrator calls wait on GET /tasks/:id?wait=60s for one task that cannot be
 * admitted: the dev server's CPU while they wait, against the same window with nobody waiting,
 * then how long the answers take once the task is cancelled (its final row).
 */
export async function waiters(ctx: PipelineContext, verdicts: Verdicts): Promise<void> {
  console.log(`\n(6) waiting without polling: ${WAITERS} calls of GET /tasks/:id?wait=60s on one waiting task, dev server CPU while they wait`);
  const worker = await startBenchWorker({ ...benchWorkerBase(ctx), name: `waiters-${ctx.stamp}`, env: { OPSLEDGER_AGENT_REPORT_S: '1' } });
  const runtime = taskRuntimeOf(worker.config);
  const app = createApp({
    db: worker.db,
    ledger: createLedgerRepository(worker.db),
    temporal: ctx.temporal,
    admission: worker.admission,
    runtime,
    playbooksDir: path.join(projectRoot, 'playbooks'),
    tokens: [{ name: 'bench', role: 'admin', sha256: hashToken(TOKEN) }],
    cursorSecret: 'bench-cursor-secret-0123456789',
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  try {
    const taskId = `bench-waiters-${ctx.stamp}`;
    // More memory than the bench's agent has: it waits in the pause queue until cancelled.
    await startTask(ctx.temporal, benchTask(taskId, runtime, { requirements: { memoryMb: 2_000_000 } }));
    const get = (query = '') =>
      fetch(`${baseUrl}/api/v1/tasks/${taskId}${query}`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(
        async (res) => (await res.json()) as { status: string },
      );
    await until(async () => ((await get()).status === 'paused' ? true : undefined), {
      timeoutMs: WAIT_TIMEOUT_MS, intervalMs: 200, what: 'the task to wait for capacity', reached: () => 'not paused yet',
    });

    // The phase before may leave the dev server busy a while: the quieter of two idle windows.
    const [first, second] = [await window(ctx), await window(ctx)];
    const idle = (first.devServer ?? 0) <= (second.devServer ?? 0) ? first : second;
    const answers = Array.from({ length: WAITERS }, () => get('?wait=60s'));
    const waitingNow = async () => (await taskWaiters.get()).values[0]?.value ?? 0;
    let seen = 0;
    await until(async () => ((seen = await waitingNow()) === WAITERS ? true : undefined), {
      timeoutMs: WAIT_TIMEOUT_MS, intervalMs: 200, what: 'every caller to wait', reached: () => `${seen} waiting`,
    });
    const waiting = await window(ctx);

    const cancelled = performance.now();
    await ctx.temporal.workflow.getHandle(taskId).executeUpdate(cancelUpdate, { args: [{}] });
    const statuses = await Promise.all(answers);
    const answeredMs = performance.now() - cancelled;

    const perS = (used: CpuTotals, kind: 'devServer' | 'postgres' | 'self') => ((used[kind] ?? 0) * 1000) / WINDOW_MS;
    const extra = perS(waiting, 'devServer') - perS(idle, 'devServer');
    const final = statuses.filter((s) => s.status === 'cancelled').length;
    console.log(
      `  CPU ms a second, nobody waiting -> ${WAITERS} waiting: dev server ${perS(idle, 'devServer').toFixed(1)} -> ${perS(waiting, 'devServer').toFixed(1)},` +
        ` postgres ${perS(idle, 'postgres').toFixed(1)} -> ${perS(waiting, 'postgres').toFixed(1)},` +
        ` bench process (worker and API) ${perS(idle, 'self').toFixed(1)} -> ${perS(waiting, 'self').toFixed(1)}`,
    );
    console.log(`  after the cancel, ${final} of ${WAITERS} calls answered "cancelled" within ${answeredMs.toFixed(0)} ms`);
    verdicts.push(
      verdict(
        `${WAITERS} waiting calls, extra dev-server CPU`,
        extra <= EXTRA_DEV_SERVER_MS_PER_S_TARGET && final === WAITERS,
        `${extra.toFixed(1)} ms a second (target <= ${EXTRA_DEV_SERVER_MS_PER_S_TARGET}, 1% of a core); ${final}/${WAITERS} answered the final state in ${answeredMs.toFixed(0)} ms`,
      ),
    );
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await worker.stop();
  }
}

/** CPU used over one WINDOW_MS: the measurement is the window itself. */
async function window(ctx: PipelineContext): Promise<CpuTotals> {
  const before = cpuOf(ctx);
  await sleep(WINDOW_MS);
  return cpuBetween(before, cpuOf(ctx));
}
