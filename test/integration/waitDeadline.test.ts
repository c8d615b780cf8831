import { api, eventually, reportCapacity, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

type Row = { status: string; actor: string; agent: string | null; outcome: any; failure: any; failureClass: string | null };

/**
 * A wait for dispatch is bounded (maxWaitS, OPSLEDGER_MAX_WAIT_S by default), and a task no live
 * agent could take even idle is refused at submit. Real PostgreSQL, the dev server and
 * ansible-playbook; the agent's capacity is set through the heartbeat API.
 */
describe('wait deadline and tasks that can never fit', () => {
  let stack: TestStack;
  const agentId = () => stack.config.OPSLEDGER_AGENT_ID;
  const heartbeat = (over: Record<string, unknown> = {}) => reportCapacity(stack, { memoryFreeMb: 100, ...over });
  const submit = (taskId: string, over: Record<string, unknown> = {}) =>
    api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml', ...over });
  const trail = async (taskId: string): Promise<Row[]> =>
    (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? [];
  const untilFinal = (taskId: string) =>
    eventually(async () => {
      const rows = await trail(taskId);
      return rows.some((r) => ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(r.status)) ? rows : undefined;
    });
  const queued = async (taskId: string) =>
    ((await api(stack.baseUrl, 'GET', `/api/v1/pause-queue?pool=${stack.config.OPSLEDGER_TASK_QUEUE}`)).json.tasks as { taskId: string }[]).some(
      (t) => t.taskId === taskId,
    );
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;

  beforeAll(async () => {
    stack = await startTestStack({ env: { OPSLEDGER_AGENT_REPORT_S: '0', OPSLEDGER_AGENT_MAX_AGE_S: '600' } });
    // Could take 4 GiB idle, but has only 100 MiB free now.
    expect((await heartbeat()).status).toBe(204);
  });
  afterAll(() => stack?.close());

  test('a task with a short maxWaitS that never fits ends resource_constraint with one final row, out of the pause queue', async () => {
    const taskId = uid('deadline');
    expect((await submit(taskId, { requirements: { memoryMb: 4096 }, maxWaitS: 2 })).status).toBe(202);
    const rows = await untilFinal(taskId);
    expect(rows.map((r) => r.status)).toEqual(['queued', 'paused', 'failed']);
    const final = rows[2]!;
    expect(final.failureClass).toBe('resource_constraint');
    expect(final.failure.context).toMatchObject({ lastShortfall: 'needs 4 GiB memory, best agent has 100 MiB', maxWaitS: 2 });
    expect(final.failure.context.waitedS).toBeGreaterThanOrEqual(2);
    expect(final.failure.message).toContain('needs 4 GiB memory');
    // The task leaves the pause queue just after its final row (the workflow's last step).
    await eventually(async () => ((await queued(taskId)) ? undefined : true));
    const state = (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;
    expect(state).toMatchObject({ status: 'failed', failureClass: 'resource_constraint' });
  });

  test('a task no live agent could take even idle is refused at submit with a problem naming the shortfall', async () => {
    const taskId = uid('never');
    const res = await submit(taskId, { requirements: { memoryMb: 64, gpuVramMb: 1_000_000 } });
    expect(res.status).toBe(422);
    expect(res.contentType).toContain('application/problem+json');
    expect(res.json.detail).toContain('needs 1000000 MiB GPU VRAM, no live agent has a GPU');
    const bigMemory = await submit(uid('never'), { requirements: { memoryMb: 1_000_000 } });
    expect(bigMemory.status).toBe(422);
    expect(bigMemory.json.detail).toContain('needs 1000000 MiB memory, the largest live agent has 8 GiB');
    expect((await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).status).toBe(404);
  });

  test('an operator hold stops the clock from firing; resumed past the deadline, the task is asked about once and fails', async () => {
    const taskId = uid('held');
    const submittedAt = Date.now();
    // Long enough that the hold lands before the deadline however busy the machine is.
    const maxWaitS = 15;
    expect((await submit(taskId, { requirements: { memoryMb: 4096 }, maxWaitS })).status).toBe(202);
    await eventually(async () => ((await trail(taskId)).some((r) => r.status === 'paused') ? true : undefined));
    expect((await api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/pause`, { by: 'alice' }, TEST_TOKENS.operator)).status).toBe(200);
    // The deadline is wall-clock time by definition: what the test waits for is that it has passed.
    await eventually(async () => (Date.now() > submittedAt + (maxWaitS + 1) * 1000 ? true : undefined));
    const held = (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;
    expect(held).toMatchObject({ status: 'paused', waiting: { reason: 'operator_hold' } });
    expect((await api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/resume`, { by: 'alice' }, TEST_TOKENS.operator)).status).toBe(200);
    const rows = await untilFinal(taskId);
    expect(rows.map((r) => r.status)).toEqual(['queued', 'paused', 'paused', 'resumed', 'paused', 'failed']);
    expect(rows.at(-1)).toMatchObject({ failureClass: 'resource_constraint', failure: { context: { maxWaitS } } });
  });

  test('an override before the deadline still dispatches', async () => {
    const taskId = uid('override');
    const submittedAt = Date.now();
    expect((await submit(taskId, { requirements: { memoryMb: 4096 }, maxWaitS: 600 })).status).toBe(202);
    await eventually(async () => ((await trail(taskId)).some((r) => r.status === 'paused') ? true : undefined));
    // The live state says when the wait runs out: maxWaitS after it began.
    const waiting = (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json.waiting;
    expect(waiting).toMatchObject({ reason: 'capacity', deadline: expect.any(String) });
    // Same machine, same clock; the workflow's wait began between the submit and now (ms precision).
    expect(Date.parse(waiting.deadline)).toBeGreaterThanOrEqual(submittedAt - 1 + 600_000);
    expect(Date.parse(waiting.deadline)).toBeLessThanOrEqual(Date.now() + 600_000);
    const res = await api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/override`, { by: 'alice' }, TEST_TOKENS.operator);
    expect(res.status).toBe(200);
    const rows = await untilFinal(taskId);
    expect(rows.map((r) => r.status)).toEqual(['queued', 'paused', 'resumed', 'dispatched', 'succeeded']);
  });

  // Last: it takes the pool's only agent away.
  test('with no live agent at all, even a huge task is accepted and waits under its deadline', async () => {
    expect((await api(stack.baseUrl, 'DELETE', `/api/v1/agents/${agentId()}`, undefined, TEST_TOKENS.admin)).status).toBeLessThan(300);
    const taskId = uid('noagent');
    expect((await submit(taskId, { requirements: { memoryMb: 64, gpuVramMb: 1_000_000 }, maxWaitS: 2 })).status).toBe(202);
    const rows = await untilFinal(taskId);
    expect(rows.map((r) => r.status)).toEqual(['queued', 'paused', 'failed']);
    expect(rows[2]).toMatchObject({ failureClass: 'resource_constraint', failure: { context: { lastShortfall: 'no live agent' } } });
  });
});
