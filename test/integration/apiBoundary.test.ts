import http from 'node:http';
import type net from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { createAdmissionRepository } from '../../src/admission/repository';
import { createApp } from '../../src/api/app';
import { FAILED_AUTH_LIMIT } from '../../src/api/auth';
import { VERIFY_LIMIT } from '../../src/api/routes/verify';
import { agentTaskQueue, taskRuntimeOf } from '../../src/config';
import { createDb } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';
import { logger } from '../../src/logger';
import { freePort } from '../support/ports';
import { agentToken, api, eventually, IDLE_HOST, startTestStack, TEST_TOKENS, testTokenConfig, type TestStack } from '../support/stack';
import { opsledger } from '../support/cli';

type Answer = { status: number; headers: http.IncomingHttpHeaders; json: any };

/** A request from a loopback address of the test's choosing, as a client on another host would make it. */
function requestFrom(localAddress: string, url: string, token: string | null): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { localAddress, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Each test replays an attack on the API over HTTP, against real PostgreSQL and Temporal, and
 * sees it refused: who may speak for an agent, who may remove one, token guessing, probing
 * readiness for internal addresses, rehashing the ledger on repeat, and the headers every answer
 * carries.
 */
describe('the API boundary under attack', () => {
  let stack: TestStack;
  const uid = (name: string) => `${name}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const ghostReport = () => ({
    pool: stack.config.OPSLEDGER_TASK_QUEUE,
    taskQueue: 'a-queue-nobody-polls',
    cpuCores: 4096,
    loadPct: 0,
    memoryTotalMb: 1 << 20,
    memoryFreeMb: 1 << 20,
  });
  const agents = async (): Promise<{ agentId: string; taskQueue: string; cpuCores: number }[]> =>
    (await api(stack.baseUrl, 'GET', '/api/v1/agents', undefined, TEST_TOKENS.viewer)).json.agents;
  const liveState = async (taskId: string) => (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;
  const untilRanOn = (taskId: string, agentId: string) =>
    eventually(async () => {
      const state = await liveState(taskId);
      return state?.agent === agentId && ['running', 'succeeded', 'failed'].includes(state.status) ? true : undefined;
    }, 90_000);

  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(() => stack?.close());

  test('no operator, orchestrator, viewer or admin token can register a ghost agent or overwrite a real one', async () => {
    const ghost = uid('ghost');
    for (const role of ['operator', 'orchestrator', 'viewer', 'admin'] as const) {
      for (const agentId of [ghost, stack.config.OPSLEDGER_AGENT_ID]) {
        const res = await api(stack.baseUrl, 'PUT', `/api/v1/agents/${agentId}/heartbeat`, ghostReport(), TEST_TOKENS[role]);
        expect([role, agentId, res.status, res.contentType]).toEqual([role, agentId, 403, expect.stringContaining('application/problem+json')]);
      }
    }
    const listed = await agents();
    expect(listed.map((a) => a.agentId)).not.toContain(ghost);
    expect(listed.find((a) => a.agentId === stack.config.OPSLEDGER_AGENT_ID)).toMatchObject({
      taskQueue: agentTaskQueue(stack.config),
      cpuCores: IDLE_HOST.cpuCores,
    });
  });

  test('an agent token reports only for the agent it is named after, and reads or submits nothing', async () => {
    const own = agentToken(stack.config.OPSLEDGER_AGENT_ID);
    const report = { pool: stack.config.OPSLEDGER_TASK_QUEUE, taskQueue: agentTaskQueue(stack.config), ...IDLE_HOST };
    expect((await api(stack.baseUrl, 'PUT', `/api/v1/agents/${uid('ghost')}/heartbeat`, ghostReport(), own)).status).toBe(403);
    expect((await api(stack.baseUrl, 'PUT', `/api/v1/agents/${stack.config.OPSLEDGER_AGENT_ID}/heartbeat`, ghostReport(), TEST_TOKENS.agent)).status).toBe(403);
    expect((await api(stack.baseUrl, 'PUT', `/api/v1/agents/${stack.config.OPSLEDGER_AGENT_ID}/heartbeat`, report, own)).status).toBe(204);

    expect((await api(stack.baseUrl, 'GET', '/api/v1/agents', undefined, own)).status).toBe(403);
    expect((await api(stack.baseUrl, 'GET', '/api/v1/audit', undefined, own)).status).toBe(403);
    const submit = { taskId: uid('by-agent'), action: 'check', services: ['dns'], playbook: 'ping.yml' };
    expect((await api(stack.baseUrl, 'POST', '/api/v1/tasks', submit, own)).status).toBe(403);
    expect((await api(stack.baseUrl, 'DELETE', `/api/v1/agents/${stack.config.OPSLEDGER_AGENT_ID}`, undefined, own)).status).toBe(403);
  });

  test('a ghost agent that got in wins the pick; an admin removes it and tasks run on the real agent again', async () => {
    // The ghost speaks with a (stolen) agent token: agent `test-agent`'s, reporting a huge idle host.
    expect((await api(stack.baseUrl, 'PUT', '/api/v1/agents/test-agent/heartbeat', ghostReport(), TEST_TOKENS.agent)).status).toBe(204);
    const lured = uid('lured');
    const task = (taskId: string) => ({ taskId, action: 'check', services: ['dns'], playbook: 'ping.yml' });
    expect((await api(stack.baseUrl, 'POST', '/api/v1/tasks', task(lured))).status).toBe(202);
    await eventually(async () => ((await liveState(lured))?.agent === 'test-agent' ? true : undefined));

    expect((await api(stack.baseUrl, 'DELETE', '/api/v1/agents/test-agent', undefined, TEST_TOKENS.operator)).status).toBe(403);
    expect((await api(stack.baseUrl, 'DELETE', '/api/v1/agents/test-agent', undefined, TEST_TOKENS.admin)).status).toBe(204);
    expect((await agents()).map((a) => a.agentId)).not.toContain('test-agent');
    const again = await api(stack.baseUrl, 'DELETE', '/api/v1/agents/test-agent', undefined, TEST_TOKENS.admin);
    expect([again.status, again.contentType]).toEqual([404, expect.stringContaining('application/problem+json')]);

    // Where a task goes is the point here, not how its playbook ends.
    const next = uid('after-removal');
    expect((await api(stack.baseUrl, 'POST', '/api/v1/tasks', task(next))).status).toBe(202);
    await untilRanOn(next, stack.config.OPSLEDGER_AGENT_ID);
    // The lured task's dispatch to the ghost's queue times out before start; admitted again, it finds only the real agent.
    await untilRanOn(lured, stack.config.OPSLEDGER_AGENT_ID);
  }, 180_000);

  test('removing an agent frees what is reserved on it and sends a grant it was not yet handed back to waiting', async () => {
    // A pool no dispatcher walks, so the grant stays put until the removal.
    const pool = uid('unwalked');
    const agentId = uid('gone');
    const admission = createAdmissionRepository(stack.db, { agentMaxAgeS: 600, loadThresholdPct: 80 });
    await admission.heartbeat({ agentId, pool, taskQueue: `${pool}-agent`, labels: {}, ...IDLE_HOST });
    const [running, granted] = [uid('running'), uid('granted')];
    await stack.db.query(
      `INSERT INTO reservations (task_id, agent_id, cpu, memory_mb, gpu_vram_mb) VALUES ($1, $3, 1, 64, 0), ($2, $3, 1, 64, 0)`,
      [running, granted, agentId],
    );
    await stack.db.query(
      `INSERT INTO pause_queue (task_id, pool, priority, reason, requirements, granted_agent, load_pct_at_dispatch)
       VALUES ($1, $2, 50, 'capacity', '{"cpu":1,"memoryMb":64,"gpuVramMb":0}', $3, 0)`,
      [granted, pool, agentId],
    );

    const cli = { OPSLEDGER_API_URL: stack.baseUrl };
    const refused = await opsledger(['agent-remove', agentId], { ...cli, OPSLEDGER_TOKEN: TEST_TOKENS.operator });
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('403')]);
    const removed = await opsledger(['agent-remove', agentId], { ...cli, OPSLEDGER_TOKEN: TEST_TOKENS.admin });
    expect([removed.code, removed.stdout, removed.stderr]).toEqual([0, `agent ${agentId} removed\n`, '']);

    expect(await stack.db.query('SELECT task_id FROM reservations WHERE agent_id = $1', [agentId])).toEqual([]);
    expect(await admission.queue(pool)).toEqual([expect.objectContaining({ taskId: granted, grantedAgent: null })]);
  });

  test(`past ${FAILED_AUTH_LIMIT} wrong tokens an address gets 429 for any token, a right one too; other addresses are unaffected`, async () => {
    const url = `${stack.baseUrl}/api/v1/agents`;
    const [attacker, bystander, busy] = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
    for (let guess = 0; guess < FAILED_AUTH_LIMIT; guess++) {
      expect((await requestFrom(attacker, url, `olt_guess${guess}`)).status).toBe(401);
    }
    const limited = await requestFrom(attacker, url, 'olt_one-more-guess');
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toContain('application/problem+json');
    expect(limited.json).toMatchObject({ status: 429, title: 'Too many requests' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const rightGuess = await requestFrom(attacker, url, TEST_TOKENS.viewer);
    expect([rightGuess.status, rightGuess.json.agents]).toEqual([429, undefined]);
    expect(Number(rightGuess.headers['retry-after'])).toBeGreaterThan(0);
    // Probes need no token, so the limit does not take the address off its health checks.
    expect((await requestFrom(attacker, `${stack.baseUrl}/healthz`, null)).status).toBe(200);

    expect((await requestFrom(bystander, url, TEST_TOKENS.viewer)).status).toBe(200);
    expect((await requestFrom(bystander, url, 'olt_own-mistake')).status).toBe(401);
    // Only failures count: many requests at once with a good token are never limited.
    const burst = await Promise.all(Array.from({ length: FAILED_AUTH_LIMIT * 3 }, () => requestFrom(busy, url, TEST_TOKENS.viewer)));
    expect(burst.map((r) => r.status)).toEqual(burst.map(() => 200));
  });

  test(`a caller gets ${VERIFY_LIMIT} full-ledger verifications a minute, then 429; another caller still gets its own`, async () => {
    for (let run = 0; run < VERIFY_LIMIT; run++) {
      expect((await api(stack.baseUrl, 'GET', '/api/v1/audit/verify', undefined, TEST_TOKENS.viewer)).status).toBe(200);
    }
    const limited = await api(stack.baseUrl, 'GET', '/api/v1/audit/verify', undefined, TEST_TOKENS.viewer);
    expect([limited.status, limited.contentType]).toEqual([429, expect.stringContaining('application/problem+json')]);
    expect((await api(stack.baseUrl, 'GET', '/api/v1/audit/verify', undefined, TEST_TOKENS.operator)).status).toBe(200);
  });

  test('with PostgreSQL and Temporal not answering, /readyz names the failing checks and a request needing either gets 503 to retry, never the connection error', async () => {
    const [pgPort, temporalPort] = [await freePort(), await freePort()];
    const deadDb = createDb({ connectionString: `postgresql://opsledger@127.0.0.1:${pgPort}/opsledger` });
    // No retry interceptor: the probe's call fails at once instead of retrying after the test closes it.
    const deadTemporal = new Client({ connection: Connection.lazy({ address: `127.0.0.1:${temporalPort}`, interceptors: [] }) });
    const app = createApp({
      db: deadDb,
      ledger: createLedgerRepository(deadDb),
      admission: createAdmissionRepository(deadDb, { agentMaxAgeS: 30, loadThresholdPct: 80 }),
      temporal: deadTemporal,
      runtime: taskRuntimeOf(stack.config),
      playbooksDir: stack.config.OPSLEDGER_PLAYBOOKS_DIR,
      tokens: testTokenConfig,
      cursorSecret: 'test-cursor-secret-0123456789',
    });
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const warn = jest.spyOn(logger, 'warn');
    try {
      const baseUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
      const res = await api(baseUrl, 'GET', '/readyz', undefined, null);
      expect([res.status, res.contentType]).toEqual([503, expect.stringContaining('application/problem+json')]);
      expect(res.json.detail).toBe('not answering: postgres, temporal');
      for (const leak of [String(pgPort), String(temporalPort), '127.0.0.1', 'ECONNREFUSED']) {
        expect(JSON.stringify(res.json)).not.toContain(leak);
      }
      const logged = warn.mock.calls.map(([fields]) => fields as { check?: string; err?: Error });
      expect(logged.find((f) => f.check === 'postgres')?.err?.message).toContain(String(pgPort));

      for (const [path, dependency] of [['/api/v1/audit/tasks/some-task', 'PostgreSQL'], ['/api/v1/tasks/some-task', 'Temporal']] as const) {
        const refused = await fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${TEST_TOKENS.viewer}` } });
        const body = await refused.text();
        expect([refused.status, refused.headers.get('content-type'), refused.headers.get('retry-after')]).toEqual([503, expect.stringContaining('application/problem+json'), '5']);
        expect(JSON.parse(body)).toMatchObject({ title: 'Service unavailable', detail: expect.stringContaining(`${dependency} is not answering`) });
        for (const leak of [String(pgPort), String(temporalPort), '127.0.0.1', 'ECONNREFUSED', 'at ']) expect(body).not.toContain(leak);
      }
    } finally {
      warn.mockRestore();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deadTemporal.connection.close().catch(() => undefined);
      await deadDb.close();
    }
  });

  test('every answer carries the security headers: data, refusals and errors strictly, the audit page with its own policy', async () => {
    const API_POLICY = "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'";
    for (const [path, token, status] of [
      ['/api/v1/agents', TEST_TOKENS.viewer, 200],
      ['/api/v1/agents', null, 401],
      ['/api/v1/agents', TEST_TOKENS.agent, 403],
      ['/api/v1/no-such-route', TEST_TOKENS.viewer, 404],
      ['/healthz', null, 200],
    ] as const) {
      const res = await fetch(`${stack.baseUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      const headers = Object.fromEntries(
        ['status', 'content-security-policy', 'x-content-type-options', 'x-frame-options', 'x-powered-by', 'cross-origin-resource-policy'].map(
          (name) => [name, name === 'status' ? res.status : res.headers.get(name)],
        ),
      );
      expect([path, headers]).toEqual([
        path,
        {
          status,
          'content-security-policy': API_POLICY,
          'x-content-type-options': 'nosniff',
          'x-frame-options': 'DENY',
          'x-powered-by': null,
          'cross-origin-resource-policy': 'same-origin',
        },
      ]);
    }
    const page = await fetch(`${stack.baseUrl}/audit`);
    expect(page.headers.get('content-security-policy')).toBe(
      "default-src 'none';script-src 'self';style-src 'self';connect-src 'self';base-uri 'none';form-action 'none';frame-ancestors 'none'",
    );
  });
});
