import { createLedgerRepository } from '../../src/ledger/repository';
import { TaskLinesPage, WhoAmI, type LedgerEntry } from '../../contracts';
import { api, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

/**
 * GET /api/v1/audit/tasks, one line per task, against trails appended here through the
 * application's login, and GET /api/v1/whoami: what each answers, to whom, and to what input.
 */

type Step = Pick<LedgerEntry, 'status'> & Partial<LedgerEntry>;

describe('the task lines and whoami endpoints', () => {
  const service = `tl${Date.now() % 1_000_000}`;
  let stack: TestStack;
  /** taskId -> the statuses of its rows, oldest first. */
  const trails: Record<string, Step[]> = {
    [`${service}-ok`]: [
      { status: 'queued' },
      { status: 'dispatched', agent: 'agent-a' },
      { status: 'succeeded', agent: 'agent-a', resourcesUsed: { wallTimeS: 12.5, estimatedDurationS: 30 } },
    ],
    [`${service}-waits`]: [{ status: 'queued' }, { status: 'paused' }],
    [`${service}-fails`]: [
      { status: 'queued', action: 'configure' },
      { status: 'dispatched', action: 'configure', agent: 'agent-b' },
      { status: 'failed', action: 'configure', agent: 'agent-b', failureClass: 'application_error', failure: { message: 'no' } },
    ],
    [`${service}-late`]: [{ status: 'queued' }, { status: 'paused' }, { status: 'resumed' }],
  };
  const order = [`${service}-ok`, `${service}-waits`, `${service}-fails`, `${service}-late`];

  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
    const ledger = createLedgerRepository(stack.db);
    // Interleaved as tasks run: each task's first row, then the rest in turns.
    const longest = Math.max(...Object.values(trails).map((t) => t.length));
    for (let seq = 1; seq <= longest; seq++) {
      for (const taskId of order) {
        const step = trails[taskId]![seq - 1];
        if (!step) continue;
        await ledger.append({
          taskId,
          runId: `run-${taskId}`,
          seq,
          action: 'deploy',
          services: [service, 'shared'],
          actor: seq === 1 ? 'test-orchestrator' : 'dispatcher',
          ...step,
        });
      }
    }
  });

  afterAll(async () => {
    await stack?.close();
  });

  const lines = (query: string, token: string | null = TEST_TOKENS.viewer) =>
    api(stack.baseUrl, 'GET', `/api/v1/audit/tasks?${query}`, undefined, token);

  test('a viewer gets one line per task with its latest state, newest first', async () => {
    const res = await lines(`service=${service}`);
    expect(res.status).toBe(200);
    expect(res.json.nextCursor).toBeNull();
    // The latest rows were appended in the order of the longest trails' last turns.
    expect(res.json.tasks.map((t: { taskId: string; status: string }) => [t.taskId, t.status])).toEqual([
      [`${service}-late`, 'resumed'],
      [`${service}-fails`, 'failed'],
      [`${service}-ok`, 'succeeded'],
      [`${service}-waits`, 'paused'],
    ]);
    const ok = res.json.tasks.find((t: { taskId: string }) => t.taskId === `${service}-ok`);
    expect(ok).toMatchObject({
      action: 'deploy',
      services: [service, 'shared'],
      intents: [`deploy_${service}`, 'deploy_shared'],
      agent: 'agent-a',
      actor: 'dispatcher',
      submittedBy: 'test-orchestrator',
      failureClass: null,
      latestSeq: 3,
      wallTimeS: 12.5,
      estimatedDurationS: 30,
    });
    expect(Date.parse(ok.lastAt) - Date.parse(ok.firstAt)).toBe(Math.round(ok.elapsedS * 1000));
    const fails = res.json.tasks.find((t: { taskId: string }) => t.taskId === `${service}-fails`);
    expect(fails).toMatchObject({ failureClass: 'application_error', intents: [`configure_${service}`, 'configure_shared'], wallTimeS: null });
  });

  test('the filters apply to each task\'s latest row: a task that moved on is not listed under its old status', async () => {
    const paused = await lines(`service=${service}&status=paused`);
    expect(paused.json.tasks.map((t: { taskId: string }) => t.taskId)).toEqual([`${service}-waits`]);
    const failed = await lines(`service=${service}&failureClass=application_error`);
    expect(failed.json.tasks.map((t: { taskId: string }) => t.taskId)).toEqual([`${service}-fails`]);
    const intent = await lines(`intent=configure_${service}`);
    expect(intent.json.tasks.map((t: { taskId: string }) => t.taskId)).toEqual([`${service}-fails`]);
  });

  test('pages follow the keyset cursor, each line once', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await lines(`service=${service}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.json.tasks.length).toBeLessThanOrEqual(1);
      seen.push(...res.json.tasks.map((t: { taskId: string }) => t.taskId));
      cursor = res.json.nextCursor;
      expect(seen.length).toBeLessThanOrEqual(order.length);
    } while (cursor !== null);
    expect(seen).toEqual([`${service}-late`, `${service}-fails`, `${service}-ok`, `${service}-waits`]);
  });

  test('bad input is a 400 naming the field; no token 401; an agent token 403', async () => {
    const bad = await lines('limit=0&status=sleeping');
    expect(bad.status).toBe(400);
    expect(bad.contentType).toContain('application/problem+json');
    expect(bad.json.errors.map((e: { field: string }) => e.field).sort()).toEqual(['limit', 'status[0]']);
    expect((await lines('cursor=forged.cursor')).status).toBe(400);
    expect((await lines('from=1h&to=2026-01-01')).json.errors[0].field).toBe('from');
    expect((await lines(`service=${service}`, null)).status).toBe(401);
    expect((await lines(`service=${service}`, TEST_TOKENS.agent)).status).toBe(403);
  });

  test.each([
    ['viewer', 'test-viewer', false],
    ['operator', 'test-operator', true],
    ['orchestrator', 'test-orchestrator', false],
    ['admin', 'test-admin', true],
  ] as const)('whoami tells the %s token its name and role, and the Temporal UI only to roles that act', async (role, name, seesUi) => {
    const res = await api(stack.baseUrl, 'GET', '/api/v1/whoami', undefined, TEST_TOKENS[role]);
    expect(res.status).toBe(200);
    const temporalUi = seesUi ? { url: 'http://localhost:8233', namespace: 'default' } : null;
    expect(res.json).toEqual({ name, role, temporalUi });
  });

  test('both answers parse, unchanged, with the schemas the OpenAPI document names, and each needs a token there', async () => {
    const doc = (await api(stack.baseUrl, 'GET', '/api/v1/openapi.json', undefined, null)).json;
    for (const [path, schema, id] of [
      [`/api/v1/audit/tasks?service=${service}`, TaskLinesPage, 'TaskLinesPage'],
      ['/api/v1/whoami', WhoAmI, 'WhoAmI'],
    ] as const) {
      const operation = doc.paths[path.split('?')[0]!].get;
      expect(operation.responses['200'].content['application/json'].schema).toEqual({ $ref: `#/components/schemas/${id}` });
      expect(operation.security ?? doc.security).toEqual([{ bearer: [] }]);
      const res = await api(stack.baseUrl, 'GET', path, undefined, TEST_TOKENS.viewer);
      // Parsing drops keys a schema does not declare, so equality also proves nothing is left undescribed.
      expect(schema.parse(res.json)).toEqual(res.json);
    }
  });

  test('whoami without a token is 401', async () => {
    expect((await api(stack.baseUrl, 'GET', '/api/v1/whoami', undefined, null)).status).toBe(401);
  });
});
