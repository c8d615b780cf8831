import { api, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

/**
 * Every role, and no token, against every operation the OpenAPI document lists. The rules below
 * are what docs/security.md promises; an operation without a rule, or a rule for an operation the
 * document no longer has, fails the first test, so a new endpoint cannot ship without one.
 */

type Rule =
  | 'public'
  /** viewer, operator, orchestrator and admin (the reading roles); not an agent */
  | 'viewer'
  | 'operator'
  | 'orchestrator'
  | 'admin'
  /** only the agent token named by the path's agent id */
  | 'agent itself';

const RULES: Record<string, Rule> = {
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'POST /api/v1/tasks': 'orchestrator',
  'GET /api/v1/tasks/{taskId}': 'viewer',
  'POST /api/v1/tasks/{taskId}/pause': 'operator',
  'POST /api/v1/tasks/{taskId}/resume': 'operator',
  'POST /api/v1/tasks/{taskId}/override': 'operator',
  'POST /api/v1/tasks/{taskId}/cancel': 'operator',
  'GET /api/v1/audit': 'viewer',
  'GET /api/v1/audit/failures': 'viewer',
  'GET /api/v1/audit/failures/summary': 'viewer',
  'GET /api/v1/audit/durations': 'viewer',
  'GET /api/v1/audit/by-service': 'viewer',
  'GET /api/v1/audit/by-service/{service}': 'viewer',
  'GET /api/v1/audit/intents': 'viewer',
  'GET /api/v1/audit/tasks/{taskId}': 'viewer',
  'GET /api/v1/audit/verify': 'viewer',
  'GET /api/v1/audit/tasks': 'viewer',
  'GET /api/v1/audit/export': 'viewer',
  'GET /api/v1/whoami': 'viewer',
  'PUT /api/v1/agents/{agentId}/heartbeat': 'agent itself',
  'DELETE /api/v1/agents/{agentId}': 'admin',
  'GET /api/v1/agents': 'viewer',
  'GET /api/v1/pause-queue': 'viewer',
  'POST /api/v1/dispatch/hold': 'operator',
  'POST /api/v1/dispatch/release': 'operator',
};

const CALLERS = ['none', 'viewer', 'operator', 'orchestrator', 'admin', 'agent'] as const;
type Caller = (typeof CALLERS)[number];
// The stack's agent token (role agent) is named test-agent.
const AGENT_NAME = 'test-agent';

const MAY: Record<Exclude<Rule, 'public' | 'agent itself'>, Caller[]> = {
  viewer: ['viewer', 'operator', 'orchestrator', 'admin'],
  operator: ['operator', 'admin'],
  orchestrator: ['orchestrator', 'admin'],
  admin: ['admin'],
};

function allowed(rule: Rule, caller: Caller): boolean {
  if (rule === 'public') return true;
  if (rule === 'agent itself') return caller === 'agent';
  return (MAY[rule] as readonly Caller[]).includes(caller);
}

/** A path with its parameters filled: nothing that exists, except the agent's own id where it reports. */
function concrete(path: string, caller: Caller): string {
  return path
    .replace('{taskId}', 'matrix-no-such-task')
    .replace('{service}', 'kuma')
    .replace('{agentId}', caller === 'agent' ? AGENT_NAME : 'matrix-no-such-agent');
}

describe('the role matrix, from the OpenAPI document', () => {
  let stack: TestStack;
  let operations: { method: string; path: string }[];
  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
    const doc = (await api(stack.baseUrl, 'GET', '/api/v1/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => ({ method: m.toUpperCase(), path })));
  });
  afterAll(() => stack?.close());

  /** The status and the raw text: some answers are CSV or NDJSON, not one JSON document. */
  const probe = async (method: string, path: string, body: unknown, token: string | null) => {
    const res = await fetch(`${stack.baseUrl}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };

  test('every documented operation has a rule, and every rule a documented operation', () => {
    const documented = operations.map((o) => `${o.method} ${o.path}`).sort();
    expect(documented).toEqual(Object.keys(RULES).sort());
  });

  test('each caller is let through exactly where its rule allows, and refused with 401 or 403 elsewhere, without a stack trace', async () => {
    const outcomes: string[] = [];
    const wrong: string[] = [];
    for (const { method, path } of operations) {
      const rule = RULES[`${method} ${path}`]!;
      for (const caller of CALLERS) {
        // A body no schema accepts: where the caller is let through, validation refuses it and nothing changes.
        const body = method === 'GET' || method === 'DELETE' ? undefined : { matrixProbe: true };
        const res = await probe(method, concrete(path, caller), body, caller === 'none' ? null : TEST_TOKENS[caller]);
        const expected = allowed(rule, caller) ? 'through' : caller === 'none' ? '401' : '403';
        const got = res.status === 401 ? '401' : res.status === 403 ? '403' : res.status >= 500 || res.status === 429 ? String(res.status) : 'through';
        outcomes.push(`${method} ${path} ${caller}: ${got}`);
        if (got !== expected) wrong.push(`${method} ${path} as ${caller}: expected ${expected}, got ${res.status}`);
        // Errors only: a ledger row's failure keeps the stack of the activity error it records.
        if (res.status >= 400 && /\\n\s+at |"stack"/.test(res.text)) wrong.push(`${method} ${path} as ${caller}: the refusal carries a stack trace`);
      }
    }
    expect(wrong).toEqual([]);
    expect(outcomes).toHaveLength(operations.length * CALLERS.length);
  });

  test('what the document does not list is public by design (the document, metrics) or answers 404 to anyone', async () => {
    for (const path of ['/api/v1/openapi.json', '/metrics']) expect((await api(stack.baseUrl, 'GET', path, undefined, null)).status).toBe(200);
    for (const caller of CALLERS) {
      const res = await api(stack.baseUrl, 'GET', '/api/v1/no-such-endpoint', undefined, caller === 'none' ? null : TEST_TOKENS[caller]);
      expect(res.status).toBe(404);
    }
  });
});
