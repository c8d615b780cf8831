import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { temporal } from '@temporalio/proto';
import { capacityGrantedSignal } from '../../workflows/messages';
import { taskRuntimeOf } from '../../src/config';
import { agentToken, api, eventually, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';
import { someoneWaitsOnLockOf } from '../support/locks';
import { testEnv } from '../support/testEnv';

const run = promisify(execFile);

type Row = { status: string; actor: string; agent: string | null; outcome: any };
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * Who the ledger says did something, and what may place a task on an agent, replayed against the
 * real API, the real workflow on the dev server and the plain `temporal` CLI.
 */
describe('actors of record and capacity grants', () => {
  let stack: TestStack;
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const agentId = () => stack.config.OPSLEDGER_AGENT_ID;
  // No worker polls it: a run dispatched there is lost to infrastructure (schedule-to-start timeout).
  const deadQueue = () => `${stack.config.OPSLEDGER_TASK_QUEUE}-nobody-polls-this`;

  beforeAll(async () => {
    stack = await startTestStack({
      env: { OPSLEDGER_AGENT_REPORT_S: '0', OPSLEDGER_AGENT_MAX_AGE_S: '600', OPSLEDGER_SCHEDULE_TO_START_TIMEOUT_S: '2' },
    });
    // Too loaded to admit anything: every task waits, so only an override can dispatch one.
    const heartbeat = await api(stack.baseUrl, 'PUT', `/api/v1/agents/${agentId()}/heartbeat`, {
      pool: stack.config.OPSLEDGER_TASK_QUEUE,
      taskQueue: deadQueue(),
      cpuCores: 4,
      loadPct: 99,
      memoryTotalMb: 8192,
      memoryFreeMb: 8192,
    }, agentToken(agentId()));
    expect(heartbeat.status).toBe(204);
  });
  afterAll(() => stack?.close());

  const submit = (taskId: string, token: string = TEST_TOKENS.orchestrator, over: Record<string, unknown> = {}) =>
    api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml', ...over }, token);
  const command = (taskId: string, name: string, body: unknown, token: string = TEST_TOKENS.operator) =>
    api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/${name}`, body, token);
  const trail = async (taskId: string): Promise<Row[]> => (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? [];
  const state = async (taskId: string) => (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;
  const untilWaiting = (taskId: string) =>
    eventually(async () => ((await state(taskId))?.status === 'paused' ? true : undefined));
  const untilRows = (taskId: string, count: number) =>
    eventually(async () => {
      const rows = await trail(taskId);
      return rows.length >= count ? rows : undefined;
    });
  const history = async (taskId: string): Promise<HistoryEvent[]> =>
    (await stack.temporal.workflow.getHandle(taskId).fetchHistory()).events ?? [];
  /** Waits until the workflow has acted on its latest signal: an event of `kind` came after it. */
  const untilActedOnSignal = (taskId: string, kind: keyof HistoryEvent) =>
    eventually(async () => {
      const events = await history(taskId);
      const signalled = events.map((e) => Boolean(e.workflowExecutionSignaledEventAttributes)).lastIndexOf(true);
      return signalled >= 0 && events.slice(signalled).some((e) => e[kind]) ? true : undefined;
    });

  async function temporalCli(args: string[]): Promise<{ ok: boolean; output: string }> {
    try {
      const { stdout, stderr } = await run(testEnv('temporalCli'), [...args, '--address', stack.config.TEMPORAL_ADDRESS]);
      return { ok: true, output: stdout + stderr };
    } catch (err) {
      const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
      return { ok: false, output: stdout + stderr };
    }
  }

  describe('the actor of record is the authenticated principal', () => {
    test('a `by` or `requestedBy` naming someone else is kept as a note; the rows name the token’s principal', async () => {
      const taskId = uid('actors');
      expect((await submit(taskId, TEST_TOKENS.orchestrator, { requestedBy: 'test-admin' })).status).toBe(202);
      await untilWaiting(taskId);
      const held = await command(taskId, 'pause', { by: 'test-admin', reason: 'change freeze' });
      expect(held.status).toBe(200);
      expect(held.json.waiting).toMatchObject({ reason: 'operator_hold', heldBy: 'test-operator' });
      expect((await command(taskId, 'resume', { by: 'someone-else' })).status).toBe(200);
      expect((await command(taskId, 'cancel', { by: 'nobody', reason: 'not today' })).status).toBe(200);

      const rows = await untilRows(taskId, 6);
      expect(rows.map((r) => `${r.status}:${r.actor}`)).toEqual([
        'queued:test-orchestrator',
        'paused:opsledger',
        'paused:test-operator',
        'resumed:test-operator',
        // Released, it waits for capacity again, and says so.
        'paused:opsledger',
        'cancelled:test-operator',
      ]);
      expect(rows[0]!.outcome).toEqual({ requestedBy: 'test-admin' });
      expect(rows[2]!.outcome).toMatchObject({ reason: 'operator_hold', note: 'change freeze', by: 'test-admin' });
      expect(rows[3]!.outcome).toMatchObject({ by: 'someone-else' });
      expect(rows[5]!.outcome).toEqual({ by: 'nobody' });
    });

    test('a REST body that names the principal itself is refused and writes nothing', async () => {
      const forgedSubmit = await submit(uid('forged-submit'), TEST_TOKENS.orchestrator, { principal: 'test-admin' });
      expect(forgedSubmit.status).toBe(400);
      expect(forgedSubmit.json.errors.map((e: { field: string }) => e.field)).toContain('principal');

      const taskId = uid('forged-command');
      await submit(taskId);
      await untilWaiting(taskId);
      const forged = await command(taskId, 'pause', { principal: 'test-admin' });
      expect(forged.status).toBe(400);
      expect(forged.json.errors.map((e: { field: string }) => e.field)).toContain('principal');
      expect((await state(taskId)).waiting.reason).not.toBe('operator_hold');
      expect((await trail(taskId)).map((r) => r.actor)).not.toContain('test-admin');
      expect((await command(taskId, 'cancel', {})).status).toBe(200);
    });

    test('through the plain Temporal CLI, whatever `by` claims, the rows say the command came through Temporal', async () => {
      const taskId = uid('via-cli');
      await submit(taskId);
      await untilWaiting(taskId);
      const paused = await temporalCli(['workflow', 'update', 'execute', '--workflow-id', taskId, '--name', 'pause', '--input', JSON.stringify({ by: 'test-operator' })]);
      expect(paused).toMatchObject({ ok: true });
      expect((await state(taskId)).waiting).toMatchObject({ reason: 'operator_hold', heldBy: 'temporal-cli' });
      expect((await temporalCli(['workflow', 'cancel', '--workflow-id', taskId])).ok).toBe(true);

      const rows = await untilRows(taskId, 4);
      expect(rows.map((r) => `${r.status}:${r.actor}`)).toEqual([
        'queued:test-orchestrator',
        'paused:opsledger',
        'paused:temporal-cli',
        'cancelled:temporal-cli',
      ]);
      expect(rows[2]!.outcome).toMatchObject({ by: 'test-operator' });
    });

    test('a task started straight through Temporal is recorded as coming through Temporal, whatever requestedBy claims', async () => {
      const taskId = uid('started-via-cli');
      const input = {
        taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml', inventory: 'localhost,', extraVars: {},
        requirements: { cpu: 0.1, memoryMb: 64, gpuVramMb: 0 }, priority: 50, checkMode: false,
        requestedBy: 'test-orchestrator', sealedSecrets: null, runtime: taskRuntimeOf(stack.config),
      };
      const started = await temporalCli([
        'workflow', 'start', '--type', 'taskWorkflow', '--task-queue', stack.config.OPSLEDGER_TASK_QUEUE,
        '--workflow-id', taskId, '--input', JSON.stringify(input),
      ]);
      expect(started).toMatchObject({ ok: true });
      await untilWaiting(taskId);
      const [queued] = await trail(taskId);
      expect(queued).toMatchObject({ status: 'queued', actor: 'temporal-cli', outcome: { requestedBy: 'test-orchestrator' } });
      expect((await command(taskId, 'cancel', {})).status).toBe(200);
    });

    /** The input of the workflow's first event, or of its first accepted Update, as Temporal keeps it. */
    const recordedInput = async (taskId: string, of: 'start' | 'update') => {
      for (const event of await history(taskId)) {
        const payload =
          of === 'start'
            ? event.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]
            : event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args?.payloads?.[0];
        if (payload?.data) return JSON.parse(Buffer.from(payload.data).toString('utf8'));
      }
      throw new Error(`no ${of} input in the history of ${taskId}`);
    };

    test('a principal written into an Update through Temporal is not the actor, not even with a proof read from history', async () => {
      const taskId = uid('forged-update');
      await submit(taskId);
      await untilWaiting(taskId);
      expect((await command(taskId, 'pause', {})).status).toBe(200);
      const signed = await recordedInput(taskId, 'update');
      expect(signed).toMatchObject({ principal: 'test-operator', principalProof: expect.any(String) });
      expect((await command(taskId, 'resume', {})).status).toBe(200);

      const copied = await temporalCli(['workflow', 'update', 'execute', '--workflow-id', taskId, '--name', 'pause', '--input', JSON.stringify(signed)]);
      expect(copied).toMatchObject({ ok: true });
      expect((await command(taskId, 'resume', {})).status).toBe(200);
      const unsigned = { principal: 'test-admin' };
      expect(await temporalCli(['workflow', 'update', 'execute', '--workflow-id', taskId, '--name', 'pause', '--input', JSON.stringify(unsigned)])).toMatchObject({ ok: true });

      // Each resume sends the task back to wait for capacity, which opsledger records itself.
      const rows = (await untilRows(taskId, 9)).filter((r) => (r.status === 'paused' || r.status === 'resumed') && r.actor !== 'opsledger');
      expect(rows.map((r) => `${r.status}:${r.actor}:${r.outcome?.unvouchedPrincipal ?? '-'}`)).toEqual([
        'paused:test-operator:-',
        'resumed:test-operator:-',
        'paused:temporal-cli:test-operator',
        'resumed:test-operator:-',
        'paused:temporal-cli:test-admin',
      ]);
      expect((await command(taskId, 'cancel', {})).status).toBe(200);
    });

    test('a task started through Temporal with a principal and a proof copied from another task is recorded as coming through Temporal', async () => {
      const original = uid('signed-start');
      await submit(original);
      await untilWaiting(original);
      const signed = await recordedInput(original, 'start');
      expect(signed).toMatchObject({ principal: 'test-orchestrator', principalProof: expect.any(String) });

      const taskId = uid('forged-start');
      const started = await temporalCli([
        'workflow', 'start', '--type', 'taskWorkflow', '--task-queue', stack.config.OPSLEDGER_TASK_QUEUE,
        '--workflow-id', taskId, '--input', JSON.stringify({ ...signed, taskId }),
      ]);
      expect(started).toMatchObject({ ok: true });
      await untilWaiting(taskId);
      const [queued] = await trail(taskId);
      expect(queued).toMatchObject({ status: 'queued', actor: 'temporal-cli', outcome: { unvouchedPrincipal: 'test-orchestrator' } });
      for (const id of [original, taskId]) expect((await command(id, 'cancel', {})).status).toBe(200);
    });
  });

  describe('a task runs only where admission reserved for it', () => {
    test('a grant signalled while an override is applied is not dispatched on again once the run is lost', async () => {
      const taskId = uid('stale-grant');
      await submit(taskId);
      await untilWaiting(taskId);
      const handle = stack.temporal.workflow.getHandle(taskId);
      // The admission lock holds the override inside its admission activity, while the dispatcher's
      // grant for the same agent arrives: the race of an operator command and a grant signal.
      const lock = await stack.db.pool.connect();
      let override: Promise<{ status: number }> | undefined;
      try {
        await lock.query('BEGIN');
        await lock.query("SELECT pg_advisory_xact_lock(hashtext('opsledger.admission'))");
        override = command(taskId, 'override', { reason: 'now' });
        // The override's admission step, an activity, blocked on the lock: started, and someone waits
        // on the lock (any suite's admission can be the one waiting; the started activity is ours).
        const overrideStarted = async () =>
          (await handle.describe()).raw.pendingActivities?.some(
            (a) => a.activityType?.name === 'overrideAdmission' && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
          ) ?? false;
        await eventually(async () => ((await overrideStarted()) && (await someoneWaitsOnLockOf(stack.db, lock)) ? true : undefined));
        await handle.signal(capacityGrantedSignal, { agentId: agentId(), taskQueue: deadQueue(), loadPctAtDispatch: 99, overridden: false });
        await untilActedOnSignal(taskId, 'workflowTaskCompletedEventAttributes');
      } finally {
        await lock.query('ROLLBACK');
        lock.release();
      }
      expect((await override!).status).toBe(200);

      // The run goes to a queue nobody polls, and is lost. The agent is still too loaded: without its
      // reservation, the task waits again instead of being dispatched on the signalled copy.
      const rows = await untilRows(taskId, 5);
      expect(rows.map((r) => `${r.status}:${r.actor}`)).toEqual([
        'queued:test-orchestrator',
        'paused:opsledger',
        'resumed:test-operator',
        'dispatched:test-operator',
        'paused:opsledger',
      ]);
      expect(rows[4]!.outcome).toMatchObject({ reason: 'capacity' });
      expect(await state(taskId)).toMatchObject({ status: 'paused', attempt: 1 });
      expect((await command(taskId, 'cancel', {})).status).toBe(200);
    });

    test('a capacityGranted signal sent through the plain Temporal CLI dispatches nothing: admission decides', async () => {
      const taskId = uid('forged-grant');
      await submit(taskId);
      await untilWaiting(taskId);
      const grant = { agentId: agentId(), taskQueue: deadQueue(), loadPctAtDispatch: 0, overridden: false };
      const signalled = await temporalCli(['workflow', 'signal', '--workflow-id', taskId, '--name', 'capacityGranted', '--input', JSON.stringify(grant)]);
      expect(signalled).toMatchObject({ ok: true });
      // Whatever the workflow does first about the signal has finished: it asks admission again, a
      // local step whose answer is a marker in history.
      await untilActedOnSignal(taskId, 'markerRecordedEventAttributes');

      expect((await trail(taskId)).map((r) => r.status)).toEqual(['queued', 'paused']);
      expect(await state(taskId)).toMatchObject({ status: 'paused', attempt: 0, waiting: { reason: 'capacity' } });
      expect((await command(taskId, 'cancel', {})).status).toBe(200);
    });
  });
  test('a dispatch hold is held by the token\'s principal, a `by` naming someone else kept beside it', async () => {
    try {
      expect((await api(stack.baseUrl, 'POST', '/api/v1/dispatch/hold', { by: 'maintenance' }, TEST_TOKENS.operator)).status).toBe(200);
      const queue = await api(stack.baseUrl, 'GET', '/api/v1/pause-queue', undefined, TEST_TOKENS.viewer);
      expect(queue.json.dispatch).toMatchObject({ held: true, heldBy: 'test-operator (for maintenance)' });
    } finally {
      await api(stack.baseUrl, 'POST', '/api/v1/dispatch/release', {}, TEST_TOKENS.operator);
    }
  });
});
