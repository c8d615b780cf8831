import { pidsRunning } from '../support/processes';
import { api, eventually, reportCapacity, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

type Row = { status: string; agent: string | null; actor: string; outcome: any; createdAt: string; chainSeq: string };

/**
 * Admission against real PostgreSQL, the dev server and ansible-playbook. The worker does not
 * report its own host here: each test sets the agent's capacity through the heartbeat API.
 */
describe('admission, the pause queue and operator commands', () => {
  let stack: TestStack;
  const agentId = () => stack.config.OPSLEDGER_AGENT_ID;

  const heartbeat = (over: Record<string, unknown> = {}) => reportCapacity(stack, over);
  const submit = (taskId: string, over: Record<string, unknown> = {}) =>
    api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml', ...over });
  const trail = async (taskId: string): Promise<Row[]> =>
    (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? [];
  const state = async (taskId: string) => (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;
  const untilStatus = (taskId: string, status: string, timeoutMs = 30_000) =>
    eventually(async () => ((await state(taskId)).status === status ? true : undefined), timeoutMs);
  const untilFinal = (taskId: string) =>
    eventually(async () => {
      const rows = await trail(taskId);
      return rows.some((r) => ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(r.status)) ? rows : undefined;
    });
  // Every command is the operator token's: its principal, not the body's `by`, is the actor of record.
  const command = (taskId: string, name: string, body: unknown = { by: 'alice' }) =>
    api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/${name}`, body, TEST_TOKENS.operator);
  const queueEntry = async (taskId: string) =>
    ((await api(stack.baseUrl, 'GET', `/api/v1/pause-queue?pool=${stack.config.OPSLEDGER_TASK_QUEUE}`)).json.tasks as {
      taskId: string; heldBy: string | null; grantedAgent: string | null;
    }[]).find((t) => t.taskId === taskId);
  const heartbeatAt = async () =>
    ((await api(stack.baseUrl, 'GET', '/api/v1/agents')).json.agents as { agentId: string; heartbeatAt: string }[]).find(
      (a) => a.agentId === agentId(),
    )!.heartbeatAt;
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;

  beforeAll(async () => {
    stack = await startTestStack({ env: { OPSLEDGER_AGENT_REPORT_S: '0', OPSLEDGER_AGENT_MAX_AGE_S: '600' } });
    expect((await heartbeat()).status).toBe(204);
  });
  // The dispatch hold stops every pool, other suites' too: a test that fails holding it must not leave it on.
  afterEach(() => api(stack.baseUrl, 'POST', '/api/v1/dispatch/release', { by: 'maintenance' }));
  afterAll(() => stack?.close());

  test('a task that does not fit waits with its shortfall, then resumes by itself when a heartbeat frees room', async () => {
    await heartbeat({ memoryFreeMb: 100 });
    const taskId = uid('vram');
    await submit(taskId, { requirements: { memoryMb: 4096 } });
    await untilStatus(taskId, 'paused');
    const waiting = await state(taskId);
    expect(waiting.waiting).toMatchObject({ reason: 'capacity', shortfall: 'needs 4 GiB memory, best agent has 100 MiB' });
    const queue = await api(stack.baseUrl, 'GET', `/api/v1/pause-queue?pool=${stack.config.OPSLEDGER_TASK_QUEUE}`);
    expect(queue.json.tasks.map((t: { taskId: string }) => t.taskId)).toContain(taskId);

    await heartbeat({ memoryFreeMb: 8192 });
    const freedAt = await heartbeatAt();
    const rows = await untilFinal(taskId);
    const resumed = rows.find((r) => r.status === 'resumed');
    // Caused by the heartbeat, however long a busy machine took to act on it (both times are the database's).
    expect(new Date(resumed!.createdAt).getTime()).toBeGreaterThanOrEqual(new Date(freedAt).getTime());
    expect(rows.map((r) => r.status)).toEqual(['queued', 'paused', 'resumed', 'dispatched', 'succeeded']);
    expect(rows[1]!.outcome).toMatchObject({ reason: 'capacity', shortfall: 'needs 4 GiB memory, best agent has 100 MiB' });
    expect(rows[2]!.actor).toBe('dispatcher');
    expect(rows[3]!.agent).toBe(agentId());
  });

  test('waiting tasks resume in priority order, then age, one at a time when only one fits', async () => {
    await api(stack.baseUrl, 'POST', '/api/v1/dispatch/hold', { by: 'maintenance' });
    // Room for one 64 MiB task at a time.
    await heartbeat({ memoryFreeMb: 100 });
    const priorities = [10, 50, 90, 50, 10, 90, 70, 30, 70, 50];
    const ids: string[] = [];
    for (const [i, priority] of priorities.entries()) {
      const taskId = uid(`order${i}`);
      ids.push(taskId);
      await submit(taskId, { priority });
      await untilStatus(taskId, 'paused');
    }
    const held = await state(ids[0]!);
    expect(held.waiting.reason).toBe('dispatch_hold');
    const expected = ids
      .map((id, i) => ({ id, priority: priorities[i]!, i }))
      .sort((a, b) => b.priority - a.priority || a.i - b.i)
      .map((t) => t.id);
    const queue = await api(stack.baseUrl, 'GET', `/api/v1/pause-queue?pool=${stack.config.OPSLEDGER_TASK_QUEUE}`);
    expect(queue.json.tasks.map((t: { taskId: string }) => t.taskId)).toEqual(expected);

    await api(stack.baseUrl, 'POST', '/api/v1/dispatch/release', { by: 'maintenance' });
    // Ten playbooks one after another: allow for a busy machine.
    const trails = await eventually(async () => {
      const all = await Promise.all(ids.map(trail));
      return all.every((rows) => rows.some((r) => r.status === 'succeeded')) ? all : undefined;
    }, 200_000);
    const dispatchedAt = new Map<string, bigint>();
    for (const [i, rows] of trails.entries()) {
      dispatchedAt.set(ids[i]!, BigInt(rows.find((r) => r.status === 'dispatched')!.chainSeq));
    }
    const actual = [...ids].sort((a, b) => (dispatchedAt.get(a)! < dispatchedAt.get(b)! ? -1 : 1));
    expect(actual).toEqual(expected);
    await heartbeat();
  }, 300_000);

  test('a held task stays held while capacity is free, and runs once resumed', async () => {
    await heartbeat({ memoryFreeMb: 10 });
    const taskId = uid('held');
    await submit(taskId);
    await untilStatus(taskId, 'paused');
    const hold = await command(taskId, 'pause', { by: 'alice', reason: 'change freeze' });
    expect(hold.status).toBe(200);
    expect(hold.json.waiting).toMatchObject({ reason: 'operator_hold', heldBy: 'test-operator' });

    await heartbeat();
    // A task submitted now is admitted only by a dispatch pass that walked past the held one, which
    // is older and fits: once it has run, the held task has provably been passed over.
    const behind = uid('behind-held');
    await submit(behind);
    expect((await untilFinal(behind)).some((r) => r.status === 'succeeded')).toBe(true);
    expect(await queueEntry(taskId)).toMatchObject({ heldBy: 'test-operator', grantedAgent: null });
    expect((await state(taskId)).status).toBe('paused');
    expect((await command(taskId, 'pause')).status).toBe(409);

    const resumed = await command(taskId, 'resume', { by: 'bob' });
    expect(resumed.status).toBe(200);
    // Capacity is free, so the dispatcher may have taken it already: either way it is no longer held.
    expect(resumed.json.waiting?.reason).not.toBe('operator_hold');
    const rows = await untilFinal(taskId);
    expect(rows.map((r) => `${r.status}:${r.actor}`)).toEqual([
      'queued:test-admin',
      'paused:opsledger',
      'paused:test-operator',
      'resumed:test-operator',
      'dispatched:dispatcher',
      'succeeded:opsledger',
    ]);
    expect(rows[2]!.outcome).toMatchObject({ reason: 'operator_hold', note: 'change freeze', by: 'alice' });
    expect(rows[3]!.outcome).toMatchObject({ by: 'bob' });
  });

  test('override dispatches a waiting task at once, ignoring capacity', async () => {
    await heartbeat({ loadPct: 99 });
    const taskId = uid('override');
    await submit(taskId);
    await untilStatus(taskId, 'paused');
    expect((await state(taskId)).waiting.shortfall).toMatch(/above 80% load/);
    const res = await command(taskId, 'override', { by: 'carol' });
    expect(res.status).toBe(200);
    const rows = await untilFinal(taskId);
    expect(rows.map((r) => r.status)).toEqual(['queued', 'paused', 'resumed', 'dispatched', 'succeeded']);
    expect(rows[2]).toMatchObject({ actor: 'test-operator', outcome: { override: true, by: 'carol' } });
    expect(rows[3]).toMatchObject({ actor: 'test-operator', outcome: { overridden: true, loadPctAtDispatch: 99 } });
    await heartbeat();
  });

  test('cancel ends a waiting task, and kills a running playbook', async () => {
    await heartbeat({ memoryFreeMb: 10 });
    const waiting = uid('cancel-waiting');
    await submit(waiting);
    await untilStatus(waiting, 'paused');
    expect((await command(waiting, 'cancel', { by: 'dave' })).status).toBe(200);
    const waitingRows = await untilFinal(waiting);
    expect(waitingRows[waitingRows.length - 1]).toMatchObject({ status: 'cancelled', actor: 'test-operator', outcome: { by: 'dave' } });

    await heartbeat();
    const running = uid('cancel-running');
    // Longer than this test may take: a cancellation that waited for the playbook instead of
    // killing it could not end the task in time, however slow or fast the machine.
    await submit(running, { playbook: 'sleep.yml', extraVars: { seconds: 600 } });
    await untilStatus(running, 'running');
    await eventually(async () => ((await state(running)).progress?.task === 'sleep' ? true : undefined));
    expect((await command(running, 'cancel', { by: 'erin', reason: 'wrong window' })).status).toBe(200);
    const rows = await untilFinal(running);
    expect(rows[rows.length - 1]).toMatchObject({ status: 'cancelled', actor: 'test-operator', failureClass: 'cancelled', outcome: { by: 'erin' } });
    expect(pidsRunning('sleep 600')).toEqual([]);
    expect((await command(running, 'resume')).status).toBe(409);
  });

  test('commands that make no sense now are refused at once and write nothing', async () => {
    const taskId = uid('refused');
    await submit(taskId);
    await untilFinal(taskId);
    const before = (await trail(taskId)).length;
    for (const name of ['pause', 'resume', 'override', 'cancel']) {
      const res = await command(taskId, name);
      expect(res.status).toBe(409);
      expect(res.contentType).toContain('application/problem+json');
    }
    expect((await command('no-such-task', 'pause')).status).toBe(404);
    expect((await command(taskId, 'pause', { who: 'x' })).status).toBe(400);
    expect((await trail(taskId)).length).toBe(before);
  });

  test('a bad heartbeat is refused naming the field', async () => {
    const res = await heartbeat({ memoryFreeMb: 99999 });
    expect(res.status).toBe(400);
    expect(res.json.errors[0].field).toBe('memoryFreeMb');
  });
});
