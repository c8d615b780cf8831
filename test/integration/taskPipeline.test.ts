import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import { OpsStatus, type TaskWorkflowInput } from '../../contracts';
import { taskRuntimeOf } from '../../src/config';
import { taskWorkflow } from '../../workflows';
import { pauseUpdate } from '../../workflows/messages';
import { api, eventually, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';
import { someoneWaitsOnLockOf } from '../support/locks';
import { expectRanOnce, IN_PROCESS_STACK_MAY_WAIT_FOR } from '../support/trail';

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

describe('task pipeline through the API, the dev server and ansible-playbook', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(() => stack?.close());

  const finalTrail = (taskId: string) =>
    eventually(async () => {
      const res = await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`);
      const rows = res.status === 200 ? (res.json.rows as { status: string }[]) : [];
      return rows.some((r) => FINAL.includes(r.status)) ? res.json.rows : undefined;
    });

  test('a submitted task runs its playbook and its trail is in the ledger', async () => {
    const taskId = `ping-${Date.now()}`;
    const submit = await api(stack.baseUrl, 'POST', '/api/v1/tasks', {
      taskId,
      action: 'deploy',
      services: ['kuma'],
      playbook: 'ping.yml',
      extraVars: { message: 'hello from the test' },
      secretVars: { api_token: 's3cr3t-value' },
    });
    expect(submit.status).toBe(202);
    expect(submit.json).toMatchObject({ taskId, existing: false });

    const rows = await finalTrail(taskId);
    expectRanOnce(rows, 'succeeded', IN_PROCESS_STACK_MAY_WAIT_FOR);
    const dispatched = rows.find((r: { status: string }) => r.status === 'dispatched');
    const final = rows[rows.length - 1];
    expect(final.outcome.counts).toMatchObject({ ok: 2, failed: 0 });
    expect(final.outcome.steps.map((s: { task: string }) => s.task)).toEqual(['ping the host', 'report the message']);
    expect(final.outcome.outputTail).toContain('ok: [localhost] hello from the test');
    expect(final.resourcesUsed.wallTimeS).toBeGreaterThan(0);
    expect(final.resourcesUsed.cpuTimeS).toBeGreaterThan(0);
    expect(final.resourcesUsed.peakMemoryMb).toBeGreaterThan(0);
    expect(JSON.stringify(rows)).not.toContain('s3cr3t-value');
    // Temporal's history keeps every input: the extra vars are there in clear, the secret is not.
    const history = await stack.temporal.workflow.getHandle(taskId).fetchHistory();
    const payloads = JSON.stringify(history, (key, value) =>
      key === 'data' && typeof value === 'string' ? Buffer.from(value, 'base64').toString('utf8') : value,
    );
    expect(payloads).toContain('hello from the test');
    expect(payloads).not.toContain('s3cr3t-value');

    const state = await eventually(async () => {
      const res = await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`);
      return res.json.workflow.status === 'COMPLETED' ? res.json : undefined;
    });
    expect(state).toMatchObject({ taskId, status: 'succeeded', agent: stack.config.OPSLEDGER_AGENT_ID, attempt: 1 });
    expect(final.agent).toBe(stack.config.OPSLEDGER_AGENT_ID);
    expect(dispatched.outcome).toMatchObject({ attempt: 1, loadPctAtDispatch: 0, overridden: false });
  });

  test('a pause sent with the start is carried out before admission is asked: the task waits held, though its agent has room', async () => {
    const taskId = `held-at-start-${Date.now()}`;
    const input: TaskWorkflowInput = {
      taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml', inventory: 'localhost,', extraVars: {},
      requirements: { cpu: 0.1, memoryMb: 64, gpuVramMb: 0 }, priority: 50, checkMode: false, sealedSecrets: null,
      runtime: taskRuntimeOf(stack.config),
    };
    const held = await stack.temporal.workflow.executeUpdateWithStart(pauseUpdate, {
      args: [{ by: 'test-operator' }],
      startWorkflowOperation: new WithStartWorkflowOperation(taskWorkflow, {
        workflowId: taskId, taskQueue: stack.config.OPSLEDGER_TASK_QUEUE, args: [input], workflowIdConflictPolicy: 'FAIL',
      }),
    });
    expect(held).toMatchObject({ status: 'paused', attempt: 0, waiting: { reason: 'operator_hold' } });
    const rows = (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json.rows as { status: string; outcome: { reason?: string } }[];
    expect(rows.map((r) => `${r.status}:${r.outcome?.reason ?? '-'}`)).toEqual(['queued:-', 'paused:operator_hold']);
    expect((await api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/cancel`, {})).status).toBe(200);
  });

  test('submitting the same taskId again answers the existing task and runs nothing twice', async () => {
    const taskId = `twice-${Date.now()}`;
    const body = { taskId, action: 'check', services: ['dns'], playbook: 'ping.yml' };
    const first = await api(stack.baseUrl, 'POST', '/api/v1/tasks', body);
    const second = await api(stack.baseUrl, 'POST', '/api/v1/tasks', body);
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.json).toMatchObject({ taskId, existing: true, runId: first.json.runId });
    await finalTrail(taskId);
    const third = await api(stack.baseUrl, 'POST', '/api/v1/tasks', body);
    expect(third.json).toMatchObject({ existing: true, runId: first.json.runId });
    const trail = await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`);
    expectRanOnce(trail.json.rows, 'succeeded', IN_PROCESS_STACK_MAY_WAIT_FOR);
  });

  test('a resubmit of a taskId with another body is refused 409 naming what differs; the same body answers the task', async () => {
    const taskId = `resubmit-${Date.now()}`;
    const body = { taskId, action: 'check', services: ['dns'], playbook: 'ping.yml', secretVars: { api_token: 'first-s3cret' } };
    expect((await api(stack.baseUrl, 'POST', '/api/v1/tasks', body)).status).toBe(202);
    // The same body from another orchestrator's token is the same task: who submits is not what is asked for.
    const again = await api(stack.baseUrl, 'POST', '/api/v1/tasks', body, TEST_TOKENS.orchestrator);
    expect(again).toMatchObject({ status: 200, json: { taskId, existing: true } });

    const changed: [string, object, string][] = [
      ['services', { ...body, services: ['dns', 'kuma'] }, 'services'],
      ['secretVars values', { ...body, secretVars: { api_token: 'other-s3cret' } }, 'secretVars'],
      ['no secretVars', { ...body, secretVars: undefined }, 'secretVars'],
      ['priority', { ...body, priority: 90 }, 'priority'],
    ];
    for (const [what, changedBody, field] of changed) {
      const res = await api(stack.baseUrl, 'POST', '/api/v1/tasks', changedBody);
      expect([what, res.status]).toEqual([what, 409]);
      expect(res.contentType).toContain('application/problem+json');
      expect(res.json.detail).toContain(field);
      expect(JSON.stringify(res.json)).not.toMatch(/s3cret/);
    }
    const rows = await finalTrail(taskId);
    expectRanOnce(rows, 'succeeded', IN_PROCESS_STACK_MAY_WAIT_FOR);
    expect(rows[0].plan.priority).toBe(50);
  });

  test('the live state and OpsStatus call a task final only once its final row is in the ledger', async () => {
    const gate = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-final-')), 'gate');
    const taskId = `final-${Date.now()}`;
    const state = async () => (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;
    await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'restart', services: ['portals'], playbook: 'wait-for-file.yml', extraVars: { path: gate } });
    await eventually(async () => ((await state())?.progress?.task === 'wait for the file' ? true : undefined));
    const handle = stack.temporal.workflow.getHandle(taskId);
    const playbookCompleted = async () =>
      ((await handle.fetchHistory()).events ?? []).some((event) => event.activityTaskCompletedEventAttributes);
    // Every append waits for the chain's lock: held here, the final row cannot be written yet.
    const chain = await stack.db.pool.connect();
    try {
      await chain.query('BEGIN');
      await chain.query("SELECT pg_advisory_xact_lock(hashtext('opsledger.ledger_chain'))");
      fs.writeFileSync(gate, '');
      // The playbook is done once its activity completes; then the final row's append (a local
      // activity, not listed in describe) can only wait for that lock. Any suite's append can be
      // the one waiting, so the completed activity is what says this task has reached its end.
      await eventually(async () => ((await playbookCompleted()) && (await someoneWaitsOnLockOf(stack.db, chain)) ? true : undefined));
      const live = await state();
      expect(live).toMatchObject({ status: 'running', workflow: { status: 'RUNNING' } });
      expect(live.result).toBeUndefined();
      expect((await handle.describe()).typedSearchAttributes.get(OpsStatus)).toBe('running');
    } finally {
      await chain.query('ROLLBACK');
      chain.release();
    }
    // The gate stays until the task is final: removed before the playbook saw it, the run would wait on.
    try {
      await eventually(async () => ((await state()).status === 'succeeded' ? true : undefined));
    } finally {
      fs.rmSync(path.dirname(gate), { recursive: true, force: true });
    }
    const rows = (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json.rows as { status: string }[];
    expect(rows[rows.length - 1]!.status).toBe('succeeded');
  });

  test('a failing playbook is recorded as an application error with its message', async () => {
    const taskId = `fail-${Date.now()}`;
    await api(stack.baseUrl, 'POST', '/api/v1/tasks', {
      taskId,
      action: 'configure',
      services: ['auth'],
      playbook: 'fail.yml',
      extraVars: { reason: 'disk quota exceeded' },
    });
    const rows = await finalTrail(taskId);
    const final = rows[rows.length - 1];
    expect(final).toMatchObject({ status: 'failed', failureClass: 'application_error' });
    expect(final.outcome.keyMessages).toEqual(['break on localhost: disk quota exceeded']);
    expect(final.failure.message).toContain('disk quota exceeded');
  });

  test('estimated against actual duration: from the plan, else the median of past runs of the intent', async () => {
    const service = `est${Date.now() % 1_000_000}`;
    const run = async (taskId: string, plan?: object) => {
      await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'backup', services: [service], playbook: 'ping.yml', plan });
      const rows = await finalTrail(taskId);
      return rows[rows.length - 1].resourcesUsed;
    };
    const planned = await run(`${service}-planned`, { steps: ['ping'], estimatedDurationS: 12, complexity: 'low' });
    expect(planned).toMatchObject({ estimatedDurationS: 12, estimateSource: 'plan', complexity: 'low' });
    const second = await run(`${service}-second`);
    expect(second).toMatchObject({ estimatedDurationS: planned.wallTimeS, estimateSource: 'median of 1 past runs' });
    expect(second.wallTimeS).toBeGreaterThan(0);

    // And as an answer: how far the intent's runs were from their estimates.
    const report = await api(stack.baseUrl, 'GET', `/api/v1/audit/durations?from=1h&service=${service}`);
    const sum = planned.wallTimeS + second.wallTimeS;
    expect(report.json.intents).toEqual([
      expect.objectContaining({ intent: `backup_${service}`, runs: 2, estimated: 2, meanActualS: expect.closeTo(sum / 2, 2) }),
    ]);
    expect(report.json.intents[0].meanEstimatedS).toBeCloseTo((12 + planned.wallTimeS) / 2, 2);
  });

  describe('bad input is answered 400 problem+json naming the field and starts nothing', () => {
    const cases: [string, unknown, string][] = [
      ['a playbook outside the folder', { action: 'deploy', services: ['kuma'], playbook: '../etc/passwd.yml' }, 'playbook'],
      ['an absolute playbook path', { action: 'deploy', services: ['kuma'], playbook: '/etc/ansible/x.yml' }, 'playbook'],
      ['a playbook that does not exist', { action: 'deploy', services: ['kuma'], playbook: 'nope.yml' }, 'playbook'],
      ['an unknown action', { action: 'explode', services: ['kuma'], playbook: 'ping.yml' }, 'action'],
      ['no services', { action: 'deploy', services: [], playbook: 'ping.yml' }, 'services'],
      ['a bad service name', { action: 'deploy', services: ['Kuma!'], playbook: 'ping.yml' }, 'services[0]'],
      ['negative needs', { action: 'deploy', services: ['kuma'], playbook: 'ping.yml', requirements: { memoryMb: -1 } }, 'requirements.memoryMb'],
      ['an unknown field', { action: 'deploy', services: ['kuma'], playbook: 'ping.yml', colour: 'red' }, 'colour'],
    ];
    test.each(cases)('%s', async (_name, body, field) => {
      const taskId = `bad-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      const res = await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, ...(body as object) });
      expect(res.status).toBe(400);
      expect(res.contentType).toContain('application/problem+json');
      expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(field);
      await expect(stack.temporal.workflow.getHandle(taskId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    });

    test('malformed JSON', async () => {
      const res = await api(stack.baseUrl, 'POST', '/api/v1/tasks', '{"action": "deploy",');
      expect(res.status).toBe(400);
      expect(res.contentType).toContain('application/problem+json');
      expect(res.json.errors[0].field).toBe('(body)');
    });
  });

  test('health, readiness, metrics and the OpenAPI document answer', async () => {
    expect((await api(stack.baseUrl, 'GET', '/healthz')).status).toBe(200);
    const ready = await api(stack.baseUrl, 'GET', '/readyz');
    expect(ready.json.checks.map((c: { ok: boolean }) => c.ok)).toEqual([true, true]);
    const metrics = await fetch(`${stack.baseUrl}/metrics`).then((r) => r.text());
    expect(metrics).toContain('opsledger_tasks_submitted_total');
    const doc = await api(stack.baseUrl, 'GET', '/api/v1/openapi.json');
    expect(doc.json.paths['/api/v1/tasks'].post.requestBody).toBeDefined();
    expect(doc.json.components.schemas.SubmitTaskRequest.required).toEqual(
      expect.arrayContaining(['action', 'services', 'playbook']),
    );
  });
});
