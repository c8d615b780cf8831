import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { api, eventually, startTestStack, type TestStack } from '../support/stack';
import { testEnv } from '../support/testEnv';

const run = promisify(execFile);

/**
 * An operator command has one contract (contracts/commands.ts), whether it comes through REST or
 * straight to the workflow's Update through the plain Temporal CLI: both refuse the same input.
 */
describe('operator commands through REST and through the plain Temporal CLI', () => {
  let stack: TestStack;
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;

  beforeAll(async () => {
    // No agent reports, so every task waits before dispatch, where all commands apply.
    stack = await startTestStack({ env: { OPSLEDGER_AGENT_REPORT_S: '0' } });
  });
  afterAll(() => stack?.close());

  async function waitingTask(): Promise<string> {
    const taskId = uid('cmd');
    const submitted = await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml' });
    expect(submitted.status).toBe(202);
    await eventually(async () => ((await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json?.status === 'paused' ? true : undefined));
    return taskId;
  }

  const rest = (taskId: string, name: string, body: unknown) => api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/${name}`, body);

  async function temporalCli(taskId: string, name: string, input: unknown): Promise<{ ok: boolean; output: string }> {
    const args = ['workflow', 'update', 'execute', '--address', stack.config.TEMPORAL_ADDRESS, '--workflow-id', taskId, '--name', name, '--input', JSON.stringify(input)];
    try {
      const { stdout, stderr } = await run(testEnv('temporalCli'), args);
      return { ok: true, output: stdout + stderr };
    } catch (err) {
      const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
      return { ok: false, output: stdout + stderr };
    }
  }

  test.each([
    ['a reason longer than 1,000 characters', 'pause', { by: 'alice', reason: 'x'.repeat(1001) }, 'reason'],
    ['an agent id that is no agent name', 'override', { by: 'alice', agentId: '../etc/passwd' }, 'agentId'],
    ['an empty name for who asks', 'resume', { by: '' }, 'by'],
    ['a field the command does not have', 'cancel', { by: 'alice', force: true }, 'force'],
  ])('%s is refused on both paths, naming the field', async (_what, name, input, field) => {
    const taskId = await waitingTask();

    const viaRest = await rest(taskId, name, input);
    expect(viaRest.status).toBe(400);
    expect(JSON.stringify(viaRest.json)).toContain(field);

    const viaTemporal = await temporalCli(taskId, name, input);
    expect(viaTemporal.ok).toBe(false);
    expect(viaTemporal.output).toContain(`invalid ${name} command`);
    expect(viaTemporal.output).toContain(field);

    // Refused before history: the task still waits, and its trail has no operator row.
    const trail = (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json.rows as { actor: string }[];
    expect(trail.map((r) => r.actor)).not.toContain('alice');
    expect((await rest(taskId, 'cancel', { by: 'cleanup' })).status).toBe(200);
  });

  test('the longest allowed reason passes on both paths', async () => {
    const longest = 'y'.repeat(1000);
    const byRest = await waitingTask();
    const viaRest = await rest(byRest, 'pause', { by: 'alice', reason: longest });
    expect(viaRest.status).toBe(200);
    // The holder of record is whoever the path vouches for: the token's principal, or Temporal itself.
    expect(viaRest.json.waiting).toMatchObject({ reason: 'operator_hold', heldBy: 'test-admin' });

    const byCli = await waitingTask();
    const viaTemporal = await temporalCli(byCli, 'pause', { by: 'bob', reason: longest });
    expect(viaTemporal).toMatchObject({ ok: true });
    const state = (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${byCli}`)).json;
    expect(state.waiting).toMatchObject({ reason: 'operator_hold', heldBy: 'temporal-cli' });

    for (const taskId of [byRest, byCli]) expect((await rest(taskId, 'cancel', { by: 'cleanup' })).status).toBe(200);
  });
  test('an override with no live agent to go to is refused, and the task goes on waiting', async () => {
    const taskId = await waitingTask();
    const named = await rest(taskId, 'override', { by: 'alice', agentId: 'nowhere-1' });
    expect(named.status).toBe(409);
    expect(named.json.detail).toContain('agent nowhere-1 is not live');
    const anyAgent = await rest(taskId, 'override', {});
    expect(anyAgent.status).toBe(409);
    expect(anyAgent.json.detail).toContain('no live agent');

    // Still waiting (for capacity, or for another suite's dispatch hold, which is global).
    expect((await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json).toMatchObject({ status: 'paused' });
    expect((await rest(taskId, 'cancel', { by: 'cleanup' })).status).toBe(200);
    const statuses = ((await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json.rows as { status: string }[]).map((r) => r.status);
    expect([statuses[0], statuses[statuses.length - 1]]).toEqual(['queued', 'cancelled']);
    expect(statuses.filter((s) => s !== 'paused' && s !== 'resumed')).toEqual(['queued', 'cancelled']);
  });
});
