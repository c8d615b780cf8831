import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { api, eventually, reportCapacity, startTestStack, type TestStack } from '../support/stack';
import { testEnv } from '../support/testEnv';
import { ONE_FIRST_STEP_PATCH } from '../../workflows/taskWorkflow';
import { HISTORIES_DIR } from './histories';

/**
 * Records the Temporal histories that replay.test.ts replays against today's workflow code. Not a
 * test (jest's testMatch skips it): run it by hand with the code whose histories are wanted, e.g.
 * `npx jest --testMatch '**\/test/replay/recordHistories.ts'`, and commit the files it writes.
 * Closed histories prove that finished paths still replay; open ones are the workflows a deploy
 * finds waiting or running, which the new code must carry on. Each file is named after the newest
 * patch of the code that recorded it (files without one predate every patch), so recording again
 * after a new patch adds histories of the new shape and keeps the old ones.
 */
describe('record task workflow histories for the replay test', () => {
  let stack: TestStack;
  const uid = (name: string) => `replay-${name}-${Date.now().toString(36)}`;
  const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];

  beforeAll(async () => {
    // The agent reports only when this file says so: what admission sees is set per scenario.
    stack = await startTestStack({ env: { OPSLEDGER_AGENT_REPORT_S: '0' } });
    fs.mkdirSync(HISTORIES_DIR, { recursive: true });
  });
  afterAll(() => stack?.close());

  const roomy = () => reportCapacity(stack, { memoryFreeMb: 8192 });
  const full = () => reportCapacity(stack, { memoryFreeMb: 0 });
  const submit = async (taskId: string, extra: Record<string, unknown> = {}) => {
    const res = await api(stack.baseUrl, 'POST', '/api/v1/tasks', {
      taskId,
      action: 'deploy',
      services: ['kuma'],
      playbook: 'ping.yml',
      requirements: { memoryMb: 512 },
      ...extra,
    });
    expect(res.status).toBe(202);
  };
  const command = async (taskId: string, name: string, body: unknown = { by: 'recorder' }) => {
    const res = await api(stack.baseUrl, 'POST', `/api/v1/tasks/${taskId}/${name}`, body);
    expect(res.status).toBe(200);
  };
  const trail = async (taskId: string) =>
    ((await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? []) as { status: string }[];
  const untilRow = (taskId: string, statuses: string[]) =>
    eventually(async () => ((await trail(taskId)).some((r) => statuses.includes(r.status)) ? true : undefined));
  // The CLI writes Temporal's own JSON form of a history, the one historyFromJSON reads.
  const save = async (name: string, taskId: string) => {
    const args = ['workflow', 'show', '--address', stack.config.TEMPORAL_ADDRESS, '--workflow-id', taskId, '--output', 'json'];
    const { stdout } = await promisify(execFile)(testEnv('temporalCli'), args, { maxBuffer: 64 * 1024 * 1024 });
    fs.writeFileSync(path.join(HISTORIES_DIR, `${ONE_FIRST_STEP_PATCH}-${name}.json`), stdout);
  };

  test('closed: admitted at once, dispatcher resume, operator hold and resume, override, cancel, failed playbook', async () => {
    await roomy();
    const atOnce = uid('admitted');
    await submit(atOnce);
    await untilRow(atOnce, FINAL);

    const failed = uid('failed');
    await submit(failed, { playbook: 'fail.yml' });
    await untilRow(failed, FINAL);

    await full();
    const resumed = uid('dispatcher-resume');
    const held = uid('hold-resume');
    const overridden = uid('override');
    const cancelled = uid('cancel');
    for (const taskId of [resumed, held, overridden, cancelled]) await submit(taskId);
    for (const taskId of [resumed, held, overridden, cancelled]) await untilRow(taskId, ['paused']);
    await command(held, 'pause');
    await command(held, 'resume');
    await command(overridden, 'override');
    await command(cancelled, 'cancel');
    await roomy();
    for (const taskId of [resumed, held, overridden, cancelled]) await untilRow(taskId, FINAL);

    await save('closed-admitted-at-once', atOnce);
    await save('closed-failed-playbook', failed);
    await save('closed-dispatcher-resume', resumed);
    await save('closed-hold-resume', held);
    await save('closed-override', overridden);
    await save('closed-cancelled-waiting', cancelled);
  });

  test('open: waiting for capacity, held by an operator, running a playbook', async () => {
    await full();
    const waiting = uid('waiting');
    const held = uid('held');
    await submit(waiting);
    await submit(held);
    await untilRow(waiting, ['paused']);
    await untilRow(held, ['paused']);
    await command(held, 'pause');
    await save('open-waiting-for-capacity', waiting);
    await save('open-held', held);
    for (const taskId of [waiting, held]) await command(taskId, 'cancel');

    await roomy();
    const running = uid('running');
    await submit(running, { playbook: 'sleep.yml', extraVars: { seconds: 20 } });
    await eventually(async () => ((await api(stack.baseUrl, 'GET', `/api/v1/tasks/${running}`)).json?.status === 'running' ? true : undefined));
    await save('open-running', running);
    await command(running, 'cancel');
  });
});
