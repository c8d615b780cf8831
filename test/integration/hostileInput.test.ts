import { WorkflowNotFoundError } from '@temporalio/client';
import fc from 'fast-check';
import { cancelUpdate, overrideUpdate, pauseUpdate, resumeUpdate, stateQuery, capacityGrantedSignal } from '../../workflows/messages';
import { api, eventually, IDLE_HOST, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

/**
 * Hostile input, generated from the OpenAPI document with fast-check (seeded, so a failure
 * replays: OPSLEDGER_FUZZ_SEED, OPSLEDGER_FUZZ_RUNS): malformed, oversized, wrongly typed and
 * boundary values in every path parameter, query parameter and body of every operation, and
 * garbage through the Temporal client to every message of a live task workflow. No answer may be
 * a 5xx or carry a stack trace, and a refused request leaves no ledger row and no workflow.
 */

const SEED = Number(process.env.OPSLEDGER_FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.OPSLEDGER_FUZZ_RUNS ?? 2000);

type Operation = { method: string; path: string; query: string[]; body: string[] | null };
type Doc = {
  paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, { schema: Schema }> } }>>;
  components?: { schemas?: Record<string, Schema> };
};
type Schema = { $ref?: string; properties?: Record<string, unknown> };

const NASTY = [
  '', ' ', '../../etc/passwd', '..%2F..%2Fetc%2Fpasswd', '/etc/ansible/hosts', '%00', '\u0000', "' OR '1'='1", '; DROP TABLE tasks; --',
  '{{ lookup("pipe", "id") }}', '$(id)', '`id`', '<script>alert(1)</script>', '-1', '0', '1e309', 'NaN', 'Infinity', 'null', 'true',
  '[]', '{}', '9'.repeat(400), 'x'.repeat(5000), 'é\u202e\ud83d\ude00', 'localhost,evil.example.com,', '7d', '2026-13-45T25:61:00Z',
];

const hostileText = fc.oneof(fc.constantFrom(...NASTY), fc.string({ maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 30 }), fc.integer().map(String));
const hostileJson = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileText,
  fc.constantFrom(null, -1, 0, 1e308, -1e308, 2 ** 53, [], {}),
);

/** The operations, each with its query parameters and its body's top-level fields, from the document. */
function operationsOf(doc: Doc): Operation[] {
  const resolve = (schema: Schema): Schema => (schema.$ref ? (doc.components?.schemas?.[schema.$ref.split('/').pop()!] ?? {}) : schema);
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => {
      const schema = op.requestBody?.content['application/json']?.schema;
      return {
        method: method.toUpperCase(),
        path,
        query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
        body: schema ? Object.keys(resolve(schema).properties ?? {}) : null,
      };
    }),
  );
}

type Request = { op: Operation; path: string; query: [string, string][]; body: { raw: string; type: string } | undefined; taskId?: string };

let submitted = 0;

function requestFor(op: Operation): fc.Arbitrary<Request> {
  const pathValue = fc.oneof(hostileText.filter((t) => t.length > 0), fc.constantFrom('kuma', 'no-such-task'));
  const pathArb = fc.tuple(...(op.path.match(/\{[^}]+\}/g) ?? []).map(() => pathValue)).map((values) => {
    let i = 0;
    return op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(values[i++]!));
  });
  const queryArb = fc.array(
    fc.tuple(fc.oneof(fc.constantFrom(...(op.query.length ? op.query : ['x'])), fc.string({ maxLength: 12 })), hostileText),
    { maxLength: 5 },
  );
  const fields = op.body ?? [];
  const objectBody = fc.dictionary(fc.oneof(fc.constantFrom(...(fields.length ? fields : ['x'])), fc.string({ maxLength: 10 })), hostileJson, { maxKeys: 6 });
  const bodyArb: fc.Arbitrary<Request['body']> =
    op.method === 'GET' || op.method === 'DELETE'
      ? fc.constant(undefined)
      : fc.oneof(
          { weight: 6, arbitrary: fc.oneof(objectBody, hostileJson).map((v) => ({ raw: JSON.stringify(v) ?? 'null', type: 'application/json' })) },
          { weight: 1, arbitrary: fc.constantFrom('{"taskId": "x",', '{{{{', '\u0000', 'null', '[1,2', '"\\ud800"').map((raw) => ({ raw, type: 'application/json' })) },
          {
            weight: 1,
            arbitrary: fc
              .tuple(hostileText, fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1'))
              .map(([raw, type]) => ({ raw, type })),
          },
        );
  return fc.record({ path: pathArb, query: queryArb, body: bodyArb }).map((r) => ({ op, ...r }));
}

/**
 * Requests that could change what every suite shares (the dispatch hold, agent reports) always
 * carry a JSON object with a field no schema knows, so they are always refused; submissions get an
 * id to be tracked by.
 */
function defused(request: Request): Request {
  const shared = /\/dispatch\/|\/heartbeat$/.test(request.op.path);
  let value: unknown;
  try {
    value = request.body?.type === 'application/json' ? JSON.parse(request.body.raw) : undefined;
  } catch {
    value = undefined;
  }
  const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
  if (shared) {
    const probe = { ...(isObject ? (value as object) : {}), fuzzProbe: true };
    return { ...request, body: { raw: JSON.stringify(probe), type: 'application/json' } };
  }
  if (!isObject || !request.body) return request;
  const object = value as Record<string, unknown>;
  // A submission is tracked by its id: refused, it must leave nothing behind.
  let taskId: string | undefined;
  if (request.op.method === 'POST' && request.op.path === '/api/v1/tasks') {
    taskId = `hostile-${process.pid}-${submitted++}`;
    object.taskId = taskId;
  }
  return { ...request, body: { ...request.body, raw: JSON.stringify(object) }, ...(taskId ? { taskId } : {}) };
}

describe('hostile input against the real API and Temporal', () => {
  let stack: TestStack;
  let operations: Operation[];
  beforeAll(async () => {
    // Room for what the probes ask for in total, none free: a task submitted here waits, and stays.
    stack = await startTestStack({ host: { ...IDLE_HOST, memoryFreeMb: 100 } });
    operations = operationsOf((await api(stack.baseUrl, 'GET', '/api/v1/openapi.json')).json as Doc);
  });
  afterAll(() => stack?.close());

  const send = async (request: Request, token: string | null) => {
    const query = new URLSearchParams(request.query).toString();
    const res = await fetch(`${stack.baseUrl}${request.path}${query ? `?${query}` : ''}`, {
      method: request.op.method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(request.body ? { 'content-type': request.body.type } : {}),
      },
      body: request.body?.raw,
    });
    return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
  };

  test(`${RUNS} generated requests to every operation: no 5xx, no stack trace, and a refused submission leaves nothing`, async () => {
    const refusedTaskIds: string[] = [];
    const statuses = new Map<string, number>();
    const everyOperation = fc.constantFrom(...operations).chain(requestFor).map(defused);
    await fc.assert(
      fc.asyncProperty(everyOperation, async (request) => {
        // The agent token for its own reports, admin for everything else: past the role checks.
        const token = request.op.path.endsWith('/heartbeat') ? TEST_TOKENS.agent : TEST_TOKENS.admin;
        const res = await send(request, token);
        statuses.set(String(res.status), (statuses.get(String(res.status)) ?? 0) + 1);
        expect(res.status).toBeLessThan(500);
        // Refusals only: a ledger row's failure keeps the stack of the activity error it records.
        if (res.status >= 400) {
          expect(res.type).toContain('application/problem+json');
          expect(res.text).not.toMatch(/\n\s+at |"stack"/);
        }
        if (request.taskId && res.status >= 400) refusedTaskIds.push(request.taskId);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // Mostly refusals, as intended; every one answered.
    expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(RUNS);
    expect(refusedTaskIds.length).toBeGreaterThan(0);
    const rows = await stack.db.query<{ task_id: string }>('SELECT task_id FROM tasks WHERE task_id = ANY ($1)', [refusedTaskIds]);
    expect(rows).toEqual([]);
    for (const taskId of refusedTaskIds.slice(0, 200)) {
      await expect(stack.temporal.workflow.getHandle(taskId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    }
  });

  test('a body over the limit is 413, as problem+json, and starts nothing', async () => {
    const taskId = `hostile-big-${process.pid}`;
    const big = JSON.stringify({ taskId, action: 'check', services: ['dns'], playbook: 'ping.yml', extraVars: { pad: 'x'.repeat(2 * 1024 * 1024) } });
    const res = await fetch(`${stack.baseUrl}/api/v1/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKENS.orchestrator}`, 'content-type': 'application/json' },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await stack.db.query('SELECT 1 FROM tasks WHERE task_id = $1', [taskId])).toEqual([]);
  });

  test('a JSON body in a charset other than UTF-8 is 415, not a server error (the generator found it)', async () => {
    const res = await fetch(`${stack.baseUrl}/api/v1/tasks/x/override`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKENS.operator}`, 'content-type': 'application/json; charset=latin1' },
      body: '{}',
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { detail: string }).detail).toBe('request body charset is not supported: send UTF-8');
  });

  test('a NUL character anywhere in a query or body is 400 naming where, not a database error (the generator found it)', async () => {
    const queue = await api(stack.baseUrl, 'GET', '/api/v1/pause-queue?pool=%00', undefined, TEST_TOKENS.viewer);
    expect(queue.status).toBe(400);
    expect(queue.json.errors).toEqual([{ field: 'query.pool', message: 'the NUL character (U+0000) is not allowed' }]);
    const taskId = `hostile-nul-${process.pid}`;
    const submit = await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'check', services: ['dns'], playbook: 'ping.yml', extraVars: { note: 'a\u0000b' } }, TEST_TOKENS.orchestrator);
    expect(submit.status).toBe(400);
    expect(submit.json.errors[0].field).toBe('body.extraVars.note');
    expect(await stack.db.query('SELECT 1 FROM tasks WHERE task_id = $1', [taskId])).toEqual([]);
  });

  test('garbage through the Temporal client to every Update of a waiting task is refused before history; the task carries on', async () => {
    const taskId = `hostile-wf-${process.pid}`;
    expect((await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'check', services: ['dns'], playbook: 'ping.yml', requirements: { memoryMb: 4096 } }, TEST_TOKENS.orchestrator)).status).toBe(202);
    const handle = stack.temporal.workflow.getHandle(taskId);
    await eventually(async () => ((await handle.query(stateQuery)).status === 'paused' ? true : undefined));
    const rowsBefore = await stack.db.query('SELECT seq FROM tasks WHERE task_id = $1', [taskId]);
    const eventsBefore = (await handle.fetchHistory()).events?.length ?? 0;

    // Not one of these is a command: no object, or an object with a field no command has, or a bad type.
    const garbage = fc.oneof(
      fc.oneof(fc.string(), fc.integer(), fc.array(fc.jsonValue({ maxDepth: 2 }), { minLength: 1 }), fc.boolean()),
      fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !['by', 'reason', 'agentId', 'principal', 'principalProof'].includes(k)), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 4 }),
      fc.record({ by: fc.oneof(fc.integer(), fc.constant(''), fc.string({ minLength: 300 }), fc.constant(null)) }),
      fc.record({ agentId: fc.oneof(fc.integer(), fc.constant(''), fc.constant('../x'), fc.string({ minLength: 300 })) }),
    );
    const updates = [pauseUpdate, resumeUpdate, overrideUpdate, cancelUpdate];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...updates), garbage, async (update, payload) => {
        await expect(handle.executeUpdate(update, { args: [payload as never] })).rejects.toThrow();
      }),
      { seed: SEED, numRuns: 120, endOnFailure: true },
    );
    // Signals cannot be refused: whatever they carry only wakes the task to ask admission again.
    for (const payload of fc.sample(hostileJson, { seed: SEED, numRuns: 20 })) await handle.signal(capacityGrantedSignal, payload as never);

    expect(await handle.query(stateQuery)).toMatchObject({ taskId, status: 'paused', waiting: { reason: 'capacity' } });
    expect(await stack.db.query('SELECT seq FROM tasks WHERE task_id = $1', [taskId])).toEqual(rowsBefore);
    const history = (await handle.fetchHistory()).events ?? [];
    // Refused Updates never reach history; the signals are there, and no workflow task failed on them.
    expect(history.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toEqual([]);
    expect(history.filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);
    expect(history.length).toBeGreaterThan(eventsBefore);
    await handle.executeUpdate(cancelUpdate, { args: [{}] });
  });
});
