import { hashToken } from '../../src/api/auth';
import { ConfigError, loadConfig } from '../../src/config';
import { api, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

describe('bearer tokens and roles', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
  });
  afterAll(() => stack?.close());

  const task = { action: 'check', services: ['dns'], playbook: 'ping.yml' };
  const call = (method: string, path: string, token: string | null, body?: unknown) =>
    api(stack.baseUrl, method, path, body, token);

  test('401 without a token or with an unknown one, as problem+json', async () => {
    const none = await call('GET', '/api/v1/agents', null);
    expect(none.status).toBe(401);
    expect(none.contentType).toContain('application/problem+json');
    expect((await call('GET', '/api/v1/agents', 'not-a-token')).status).toBe(401);
    expect((await call('GET', '/api/v1/audit/tasks/x', null)).status).toBe(401);
  });

  test.each([
    ['viewer', 'POST', '/api/v1/tasks', 403, task],
    ['operator', 'POST', '/api/v1/tasks', 403, task],
    ['orchestrator', 'POST', '/api/v1/dispatch/hold', 403, {}],
    ['viewer', 'POST', '/api/v1/tasks/x/cancel', 403, {}],
    ['viewer', 'PUT', '/api/v1/agents/a1/heartbeat', 403, {}],
    ['operator', 'PUT', '/api/v1/agents/a1/heartbeat', 403, {}],
    ['admin', 'PUT', '/api/v1/agents/a1/heartbeat', 403, {}],
    ['agent', 'PUT', '/api/v1/agents/a1/heartbeat', 403, {}],
    ['agent', 'GET', '/api/v1/agents', 403, undefined],
    ['operator', 'DELETE', '/api/v1/agents/a1', 403, undefined],
    ['admin', 'DELETE', '/api/v1/agents/no-such-agent', 404, undefined],
    ['viewer', 'GET', '/api/v1/pause-queue', 200, undefined],
    ['orchestrator', 'GET', '/api/v1/agents', 200, undefined],
    ['operator', 'POST', '/api/v1/tasks/no-such-task/cancel', 404, {}],
  ] as const)('%s %s %s -> %i', async (role, method, path, status, body) => {
    expect((await call(method, path, TEST_TOKENS[role], body)).status).toBe(status);
  });


  test('an agent token must be named by an agent id; the error names the variable', () => {
    const entry = (name: string) => `${name}:agent:${hashToken('t')}`;
    expect(loadConfig({ OPSLEDGER_TOKENS: entry('worker-1.example') }).OPSLEDGER_TOKENS).toEqual([
      { name: 'worker-1.example', role: 'agent', sha256: hashToken('t') },
    ]);
    expect(() => loadConfig({ OPSLEDGER_TOKENS: entry('ops@example') })).toThrow(ConfigError);
    expect(() => loadConfig({ OPSLEDGER_TOKENS: entry('ops@example') })).toThrow(/OPSLEDGER_TOKENS: expected name:role:sha256hex/);
  });

  test('health, metrics and the OpenAPI document need no token', async () => {
    for (const path of ['/healthz', '/metrics', '/api/v1/openapi.json']) {
      expect((await call('GET', path, null)).status).toBe(200);
    }
  });
});
