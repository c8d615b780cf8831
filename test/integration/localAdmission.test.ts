import { createActivities, type FirstStep } from '../../activities';
import { createAdmissionRepository } from '../../src/admission/repository';
import { createLedgerRepository } from '../../src/ledger/repository';
import type { AdmissionRequest } from '../../contracts';
import { api, eventually, reportCapacity, startTestStack, type TestStack } from '../support/stack';
import type { TrailRow } from '../support/trail';

const ADMISSION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('opsledger.admission'))";

/**
 * Admission is a local activity: were the workflow task that asked lost (its worker killed), the
 * next attempt asks again, and must get the answer whose rows the first attempt may already have
 * written. These tests check both halves against the real parts: the kept answer, and what the
 * workflow does with an answer that is older than the question's second asking.
 */
describe('admission asked locally: one answer per question', () => {
  let stack: TestStack;
  const trail = async (taskId: string): Promise<TrailRow[]> =>
    (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? [];
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;

  beforeAll(async () => {
    stack = await startTestStack({ env: { OPSLEDGER_AGENT_REPORT_S: '0', OPSLEDGER_AGENT_MAX_AGE_S: '600' } });
    expect((await reportCapacity(stack)).status).toBe(204);
  });
  afterAll(() => stack?.close());

  test('asked again, admission answers as it did, whatever changed since, and keeps its reservation; a new question is answered anew', async () => {
    // A pool of its own: no dispatcher walks it, so nothing but these calls decides for the task.
    const pool = uid('kept-answers');
    const admission = createAdmissionRepository(stack.db, { agentMaxAgeS: 600, loadThresholdPct: 80 });
    const report = (memoryFreeMb: number) =>
      admission.heartbeat({
        agentId: `${pool}-agent`, pool, taskQueue: `${pool}-agent`, labels: {},
        cpuCores: 4, loadPct: 10, memoryTotalMb: 8192, memoryFreeMb, gpuVramTotalMb: null, gpuVramFreeMb: null,
      });
    const request: AdmissionRequest = { taskId: uid('kept'), pool, priority: 50, needs: { cpu: 1, memoryMb: 1000, gpuVramMb: 0 } };
    const first = { runId: 'run-a', ask: 1 };

    await report(100);
    const waiting = await admission.admitOnce(request, first);
    expect(waiting).toEqual({ admitted: false, reason: 'capacity', shortfall: expect.stringContaining('memory'), position: 1 });

    await report(8192);
    expect(await admission.admitOnce(request, first)).toEqual({ ...waiting, replayed: true });
    expect(await admission.admitOnce(request, { runId: 'run-b', ask: 1 })).toMatchObject({ admitted: true, agentId: `${pool}-agent` });
    const admitted = await admission.admitOnce(request, { runId: 'run-a', ask: 2 });
    expect(admitted).toMatchObject({ admitted: true, agentId: `${pool}-agent` });
    // A run lost to infrastructure frees what it holds and asks again; played again, the free comes
    // before the kept answer, which stands with its reservation.
    await admission.finish(request.taskId);
    expect(await admission.admitOnce(request, { runId: 'run-a', ask: 2 })).toEqual({ ...admitted, replayed: true });
    expect(await stack.db.query('SELECT agent_id, memory_mb FROM reservations WHERE task_id = $1', [request.taskId])).toEqual([
      { agent_id: `${pool}-agent`, memory_mb: '1000' },
    ]);

    await admission.ended(request.taskId);
    const left = await stack.db.query('SELECT ask FROM admission_answers WHERE task_id = $1', [request.taskId]);
    expect(left).toEqual([]);
    expect(await stack.db.query('SELECT task_id FROM reservations WHERE task_id = $1', [request.taskId])).toEqual([]);
  });

  test("a task's first step, run again as after a lost workflow task, writes its rows once and answers as it did", async () => {
    const pool = uid('first-step');
    const admission = createAdmissionRepository(stack.db, { agentMaxAgeS: 600, loadThresholdPct: 80 });
    const activities = createActivities({ ledger: createLedgerRepository(stack.db), admission, runner: undefined as never, playbookTimeoutS: 1 });
    const report = (memoryFreeMb: number) =>
      admission.heartbeat({
        agentId: `${pool}-agent`, pool, taskQueue: `${pool}-agent`, labels: {},
        cpuCores: 4, loadPct: 10, memoryTotalMb: 8192, memoryFreeMb, gpuVramTotalMb: null, gpuVramFreeMb: null,
      });
    const firstStep = (taskId: string): FirstStep => {
      const row = { taskId, runId: 'run-a', action: 'deploy', services: ['kuma'] };
      return {
        queued: { ...row, seq: 1, status: 'queued', actor: 'temporal-cli' },
        request: { taskId, pool, priority: 50, needs: { cpu: 1, memoryMb: 1000, gpuVramMb: 0 } },
        question: { runId: 'run-a', ask: 1 },
        dispatched: { ...row, seq: 2, status: 'dispatched', actor: 'dispatcher' },
        task: { action: 'deploy', services: ['kuma'], planned: 7 },
      };
    };

    await report(8192);
    // Another suite's dispatch hold, one switch for every pool, makes a task wait: then a new one is tried.
    const { admittedTask, admitted } = await eventually(async () => {
      const taskId = uid('first-admitted');
      const step = await activities.enterTask(firstStep(taskId));
      if (step.answer.admitted) return { admittedTask: taskId, admitted: step };
      await admission.ended(taskId);
      return undefined;
    });
    expect(admitted).toEqual({
      answer: { admitted: true, agentId: `${pool}-agent`, taskQueue: `${pool}-agent`, loadPctAtDispatch: 10, overridden: false },
      estimate: { seconds: 7, source: 'plan' },
    });
    await report(100);
    expect(await activities.enterTask(firstStep(admittedTask))).toEqual({ ...admitted, answer: { ...admitted.answer, replayed: true } });
    const rows = await trail(admittedTask);
    expect(rows.map((r) => `${r.status}:${r.actor}`)).toEqual(['queued:temporal-cli', 'dispatched:dispatcher']);
    expect(rows[1]).toMatchObject({ agent: `${pool}-agent`, outcome: { attempt: 1, loadPctAtDispatch: 10, overridden: false } });

    const waitingTask = uid('first-waiting');
    const waiting = await activities.enterTask(firstStep(waitingTask));
    expect(waiting).toEqual({ answer: expect.objectContaining({ admitted: false }) });
    await report(8192);
    expect(await activities.enterTask(firstStep(waitingTask))).toEqual({ answer: { ...waiting.answer, replayed: true } });
    expect((await trail(waitingTask)).map((r) => r.status)).toEqual(['queued']);

    for (const taskId of [admittedTask, waitingTask]) await admission.ended(taskId);
  });

  test('a kept answer that said "wait" makes the workflow ask once more, so a wake-up spent before it is not lost', async () => {
    // The first attempt of the workflow task is played by the test: while admission's lock is held,
    // the workflow's first question waits for it; the test files the answer an earlier attempt would
    // have kept (no room), with room free all along. Nothing will wake the task again: only asking
    // once more dispatches it.
    const taskId = uid('replayed-wait');
    await stack.db.transaction(async (lock) => {
      await lock.query(ADMISSION_LOCK);
      const submitted = await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml' });
      expect(submitted.status).toBe(202);
      const { runId } = await stack.temporal.workflow.getHandle(taskId).describe();
      await eventually(async () => ((await trail(taskId)).some((r) => r.status === 'queued') ? true : undefined));
      await lock.query('INSERT INTO admission_answers (task_id, run_id, ask, answer) VALUES ($1, $2, 1, $3)', [
        taskId,
        runId,
        JSON.stringify({ admitted: false, reason: 'capacity', shortfall: 'memory: kept from the lost attempt', position: 1 }),
      ]);
    });

    const rows = await eventually(async () => {
      const seen = await trail(taskId);
      return seen.some((r) => r.status === 'succeeded') ? seen : undefined;
    });
    const statuses = rows.map((r) => r.status);
    expect(statuses.slice(0, 2)).toEqual(['queued', 'paused']);
    expect(rows[1]!.outcome).toMatchObject({ reason: 'capacity', shortfall: 'memory: kept from the lost attempt' });
    // Another suite's dispatch hold may make the second question wait too; then the dispatcher resumes it.
    for (const row of rows.slice(2, -3)) expect(row).toMatchObject({ status: 'paused', outcome: { reason: 'dispatch_hold' } });
    expect(statuses.slice(-3)).toEqual(['resumed', 'dispatched', 'succeeded']);
    // The answers are forgotten in the same activity as the final row, just after it.
    await eventually(async () => {
      const kept = await stack.db.query('SELECT ask FROM admission_answers WHERE task_id = $1', [taskId]);
      return kept.length === 0 ? true : undefined;
    });
  });
});
