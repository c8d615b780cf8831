import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createApiClient } from '../../src/client/apiClient';
import { api, eventually, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

/**
 * GET /tasks/:id?wait=... answers when the task's trail grows or the wait ends: an orchestrator
 * waits without polling. Real PostgreSQL (the ledger's append notices), the dev server, ansible-playbook.
 */
describe('waiting for a task without polling', () => {
  let stack: TestStack;
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const state = (taskId: string, query = '', token: string | null = TEST_TOKENS.viewer) =>
    api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}${query}`, undefined, token);
  const trail = async (taskId: string) =>
    ((await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? []) as { status: string; createdAt: string }[];

  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(() => stack?.close());

  async function runningTask(): Promise<{ taskId: string; gate: string }> {
    const gate = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-wait-')), 'gate');
    const taskId = uid('wait');
    const submitted = await api(stack.baseUrl, 'POST', '/api/v1/tasks', {
      taskId, action: 'restart', services: ['portals'], playbook: 'wait-for-file.yml', extraVars: { path: gate },
    });
    expect(submitted.status).toBe(202);
    await eventually(async () => ((await state(taskId)).json?.progress?.task === 'wait for the file' ? true : undefined));
    return { taskId, gate };
  }

  test('a waiting call answers with the final state once the final row lands', async () => {
    const { taskId, gate } = await runningTask();
    const waiting = state(taskId, '?wait=60s');
    // Still waiting while nothing changes: the playbook waits for its gate.
    const early = await Promise.race([waiting.then(() => 'answered'), new Promise((r) => setTimeout(r, 1500, 'waiting'))]);
    expect(early).toBe('waiting');
    fs.writeFileSync(gate, '');
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.json.status).toBe('succeeded');
    const rows = await trail(taskId);
    expect(rows[rows.length - 1]!.status).toBe('succeeded');
    fs.rmSync(path.dirname(gate), { recursive: true, force: true });
  });

  test('a wait that ends with no change answers the current state; an ended task answers at once', async () => {
    const { taskId, gate } = await runningTask();
    const started = Date.now();
    const expired = await state(taskId, '?wait=2s');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(expired.status).toBe(200);
    expect(expired.json).toMatchObject({ taskId, status: 'running', workflow: { status: 'RUNNING' } });

    fs.writeFileSync(gate, '');
    const final = await createApiClient({ baseUrl: stack.baseUrl, token: TEST_TOKENS.viewer }).follow(taskId);
    expect(final.status).toBe('succeeded');
    const atOnce = Date.now();
    expect((await state(taskId, '?wait=60s')).json.status).toBe('succeeded');
    expect(Date.now() - atOnce).toBeLessThan(5000);
    fs.rmSync(path.dirname(gate), { recursive: true, force: true });
  });

  test('submitAndWait resolves with the final state', async () => {
    const ops = createApiClient({ baseUrl: stack.baseUrl, token: TEST_TOKENS.orchestrator });
    const seen: string[] = [];
    const final = await ops.submitAndWait({ taskId: uid('saw'), action: 'deploy', services: ['kuma'], playbook: 'ping.yml' }, (s) => seen.push(s.status));
    expect(final.status).toBe('succeeded');
    expect(seen[seen.length - 1]).toBe('succeeded');
  });

  test.each([
    ['a wait with no unit it knows', '?wait=30h'],
    ['a wait of zero', '?wait=0s'],
    ['a wait past the longest allowed', '?wait=61s'],
    ['a wait that is no number', '?wait=soon'],
  ])('%s is refused with 400 naming the field', async (_what, query) => {
    const res = await state('any-task', query);
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.json)).toContain('wait');
  });

  test('the role rules are those of GET /tasks/:id: a token is needed, an agent token may not', async () => {
    expect((await state('any-task', '?wait=1s', null)).status).toBe(401);
    expect((await state('any-task', '?wait=1s', TEST_TOKENS.agent)).status).toBe(403);
    expect((await state(uid('none'), '?wait=1s')).status).toBe(404);
  });
});
