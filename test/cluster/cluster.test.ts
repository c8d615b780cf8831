import fs from 'node:fs';
import path from 'node:path';
import { isRunning } from '../../src/cluster/processes';
import { eventually } from '../support/stack';
import { CLUSTER_UP_TIMEOUT_MS, FINAL, startTestCluster, taskState, trail, untilFinal, untilGone, type TestCluster } from './harness';

/**
 * The production shape as compose describes it, run natively: a Temporal server persisted in
 * PostgreSQL with SQL visibility, its Web UI, two agents and two API replicas, each its own process, brought
 * up by `opsledger cluster up`.
 */
describe('the production shape: a Temporal server on PostgreSQL, its Web UI, agents and API replicas as processes', () => {
  let cluster: TestCluster;
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const submit = (apiUrl: string, taskId: string, extra: Record<string, unknown> = {}) =>
    cluster.call(apiUrl, 'POST', '/api/v1/tasks', { taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml', ...extra });

  beforeAll(async () => {
    cluster = await startTestCluster({ agents: 2, apis: 2 });
  }, CLUSTER_UP_TIMEOUT_MS + 120_000);
  afterAll(() => cluster?.close(), 180_000);

  test('every part is its own process, and both agents report to admission', async () => {
    const names = cluster.state().processes.map((p) => p.name).sort();
    expect(names).toEqual(expect.arrayContaining(['agent-1', 'agent-2', 'api-1', 'api-2', 'temporal', 'temporal-ui']));
    expect(new Set(cluster.state().processes.map((p) => p.pid)).size).toBe(cluster.state().processes.length);
    const agents = (await cluster.call(cluster.apiUrls[0]!, 'GET', '/api/v1/agents')).json.agents as { agentId: string; live: boolean }[];
    expect(agents.filter((a) => a.live).map((a) => a.agentId).sort()).toEqual(['agent-1', 'agent-2']);
  });

  test("the Web UI serves its page, lists the namespace's workflows through its API, and the audit page links to it", async () => {
    const uiUrl = `http://127.0.0.1:${cluster.process('temporal-ui').port}`;
    const page = await fetch(uiUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('<html');

    const taskId = uid('ui');
    expect((await submit(cluster.apiUrls[0]!, taskId)).status).toBe(202);
    const query = encodeURIComponent(`WorkflowId="${taskId}"`);
    type Listed = { executions?: { execution: { workflowId: string } }[] };
    const listed = await eventually(async () => {
      const { executions } = (await (await fetch(`${uiUrl}/api/v1/namespaces/default/workflows?query=${query}`)).json()) as Listed;
      return executions?.length ? executions : undefined;
    });
    expect(listed.map((e) => e.execution.workflowId)).toEqual([taskId]);

    const whoami = await cluster.call(cluster.apiUrls[1]!, 'GET', '/api/v1/whoami');
    expect(whoami.json.temporalUi).toEqual({ url: uiUrl, namespace: 'default' });
  });

  test('a task runs on the agent admission picked, and the ledger names it', async () => {
    const taskId = uid('picked');
    expect((await submit(cluster.apiUrls[0]!, taskId)).status).toBe(202);
    const rows = await untilFinal(cluster, cluster.apiUrls[0]!, taskId);
    const dispatched = rows.find((r) => r.status === 'dispatched')!;
    const final = rows[rows.length - 1]!;
    expect(final.status).toBe('succeeded');
    expect(['agent-1', 'agent-2']).toContain(dispatched.agent);
    expect(final.agent).toBe(dispatched.agent);
    expect((await taskState(cluster, cluster.apiUrls[0]!, taskId)).agent).toBe(dispatched.agent);
  });

  test('two API replicas serve one ledger: submit on one, trail and cursor on the other, pause through one and resume through the other', async () => {
    const [one, other] = cluster.apiUrls as [string, string];
    // Held dispatch keeps the task waiting, where operator commands apply, however fast the agents are.
    expect((await cluster.call(one, 'POST', '/api/v1/dispatch/hold', { by: 'cluster test' })).status).toBe(200);
    const taskId = uid('replicas');
    try {
      expect((await submit(one, taskId)).status).toBe(202);
      await eventually(async () => ((await taskState(cluster, other, taskId))?.status === 'paused' ? true : undefined));
      expect((await cluster.call(one, 'POST', `/api/v1/tasks/${taskId}/pause`, { reason: 'checked by hand first' })).status).toBe(200);
    } finally {
      await cluster.call(other, 'POST', '/api/v1/dispatch/release', {});
    }
    await eventually(async () => ((await taskState(cluster, other, taskId))?.waiting?.reason === 'operator_hold' ? true : undefined));
    expect((await cluster.call(other, 'POST', `/api/v1/tasks/${taskId}/resume`, {})).status).toBe(200);

    const rows = await untilFinal(cluster, other, taskId);
    expect(rows.filter((r) => FINAL.includes(r.status)).map((r) => r.status)).toEqual(['succeeded']);
    expect(await trail(cluster, one, taskId)).toEqual(rows);

    const firstPage = (await cluster.call(one, 'GET', '/api/v1/audit?limit=1')).json;
    expect(firstPage.nextCursor).toEqual(expect.any(String));
    const nextPage = await cluster.call(other, 'GET', `/api/v1/audit?limit=1&cursor=${encodeURIComponent(firstPage.nextCursor)}`);
    expect(nextPage.status).toBe(200);
    expect(nextPage.json.rows[0].id).not.toBe(firstPage.rows[0].id);
  });

  test('SIGKILL of the Temporal server while tasks wait and run loses none: each ends with exactly one final row', async () => {
    const [one, other] = cluster.apiUrls as [string, string];
    // The playbooks run until the test lets them go, so the kill lands mid-run however slow the machine is.
    const gate = path.join(cluster.env.OPSLEDGER_CLUSTER_DIR!, `gate-${Date.now()}`);
    const running = [uid('running'), uid('running')];
    for (const taskId of running) {
      expect((await submit(one, taskId, { playbook: 'wait-for-file.yml', extraVars: { path: gate } })).status).toBe(202);
    }
    for (const taskId of running) {
      await eventually(async () => ((await taskState(cluster, one, taskId))?.progress?.task === 'wait for the file' ? true : undefined));
    }
    expect((await cluster.call(one, 'POST', '/api/v1/dispatch/hold', { by: 'cluster test' })).status).toBe(200);
    const waiting = [uid('waiting'), uid('waiting')];
    for (const taskId of waiting) expect((await submit(one, taskId)).status).toBe(202);
    for (const taskId of waiting) {
      await eventually(async () => ((await taskState(cluster, one, taskId))?.waiting?.reason === 'dispatch_hold' ? true : undefined));
    }

    const temporal = cluster.process('temporal');
    process.kill(temporal.pid, 'SIGKILL');
    await untilGone(temporal);
    const again = await cluster.up();
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('started temporal');
    expect(cluster.process('temporal').pid).not.toBe(temporal.pid);

    await cluster.call(other, 'POST', '/api/v1/dispatch/release', {});
    fs.writeFileSync(gate, '');
    for (const taskId of [...running, ...waiting]) {
      const rows = await untilFinal(cluster, other, taskId);
      expect({ taskId, finals: rows.filter((r) => FINAL.includes(r.status)).map((r) => r.status) }).toEqual({ taskId, finals: ['succeeded'] });
    }
  });

  test('a lower OPSLEDGER_CLUSTER_AGENTS stops the agents beyond it, and the state file forgets them', async () => {
    const added = await cluster.up({ OPSLEDGER_CLUSTER_AGENTS: '3' });
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('started agent-3');
    const third = cluster.process('agent-3');

    const fewer = await cluster.up({ OPSLEDGER_CLUSTER_AGENTS: '2' });
    expect(fewer.code).toBe(0);
    expect(fewer.stdout).toContain('stopped agent-3');
    expect(fewer.stdout).not.toContain('agent-3 ');
    expect(isRunning(third)).toBe(false);
    expect(cluster.state().processes.map((p) => p.name)).not.toContain('agent-3');
    expect(cluster.state().processes.filter((p) => p.role === 'agent').every(isRunning)).toBe(true);
  });

  test('OPSLEDGER_CLUSTER_UI=0 stops the Web UI and forgets it; the next up starts it again on its port', async () => {
    const ui = cluster.process('temporal-ui');
    const off = await cluster.up({ OPSLEDGER_CLUSTER_UI: '0' });
    expect(off.code).toBe(0);
    expect(off.stdout).toContain('stopped temporal-ui');
    expect(isRunning(ui)).toBe(false);
    expect(cluster.state().processes.map((p) => p.name)).not.toContain('temporal-ui');

    const on = await cluster.up();
    expect(on.code).toBe(0);
    expect(on.stdout).toContain('started temporal-ui');
    expect(on.stdout).toContain(`Temporal UI  http://127.0.0.1:${ui.port}`);
  });
});
