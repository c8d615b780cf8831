import { createLedgerRepository } from '../../src/ledger/repository';
import { CSV_COLUMNS, csvCell } from '../../src/api/exportFormats';
import { api, eventually, startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';

/**
 * GET /api/v1/audit/export against rows appended here through the application's login: the file
 * holds exactly the rows /audit pages through, CSV cells cannot run as formulas, and the route
 * answers only a token holder's well-formed query.
 */

describe('the audit export', () => {
  const service = `ex${Date.now() % 1_000_000}`;
  const hostile = { agent: '=HYPERLINK("http://evil.example","x")', actor: '@SUM(A1:A9)', note: '+1,"quoted"\nnext' };
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
    const ledger = createLedgerRepository(stack.db);
    for (let task = 0; task < 7; task++) {
      const taskId = `${service}-${task}`;
      const statuses = task === 3 ? (['queued', 'dispatched', 'failed'] as const) : (['queued', 'dispatched', 'succeeded'] as const);
      for (const [i, status] of statuses.entries()) {
        await ledger.append({
          taskId,
          runId: `run-${taskId}`,
          seq: i + 1,
          status,
          action: 'deploy',
          services: [service],
          actor: task === 3 ? hostile.actor : 'test-orchestrator',
          ...(status === 'queued' ? {} : { agent: task === 3 ? hostile.agent : 'agent-a' }),
          ...(status === 'failed' ? { failureClass: 'application_error' as const, failure: { message: hostile.note } } : {}),
          outcome: { note: hostile.note },
        });
      }
    }
  });

  afterAll(async () => {
    await stack?.close();
  });

  const download = async (query: string, token: string | null = TEST_TOKENS.viewer, accept?: string) => {
    const res = await fetch(`${stack.baseUrl}/api/v1/audit/export?${query}`, {
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(accept ? { accept } : {}) },
    });
    return { status: res.status, type: res.headers.get('content-type') ?? '', disposition: res.headers.get('content-disposition'), text: await res.text() };
  };

  /** Every row /audit answers for the query, page by page. */
  async function listed(query: string) {
    const rows: unknown[] = [];
    let cursor: string | null = null;
    do {
      const res = await api(stack.baseUrl, 'GET', `/api/v1/audit?${query}&limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, undefined, TEST_TOKENS.viewer);
      expect(res.status).toBe(200);
      rows.push(...res.json.rows);
      cursor = res.json.nextCursor;
    } while (cursor !== null);
    return rows;
  }

  test('NDJSON holds exactly the rows /audit pages through, in its order, field for field', async () => {
    const file = await download(`service=${service}&format=ndjson`);
    expect(file.status).toBe(200);
    expect(file.type).toBe('application/x-ndjson');
    expect(file.disposition).toBe('attachment; filename="opsledger-audit.ndjson"');
    const lines = file.text.trimEnd().split('\n').map((line) => JSON.parse(line));
    expect(lines).toHaveLength(21);
    expect(lines).toEqual(await listed(`service=${service}`));
    const failed = await download(`service=${service}&status=failed`, TEST_TOKENS.viewer, 'application/x-ndjson');
    expect(failed.text.trimEnd().split('\n').map((line) => JSON.parse(line))).toEqual(await listed(`service=${service}&status=failed`));
  });

  test('CSV has a header and a line per row, and no cell a spreadsheet would run as a formula', async () => {
    const file = await download(`service=${service}`, TEST_TOKENS.viewer, 'text/csv');
    expect(file.status).toBe(200);
    expect(file.type).toBe('text/csv; charset=utf-8');
    const records = file.text.split('\r\n');
    expect(records[0]).toBe(CSV_COLUMNS.join(','));
    // The outcome's note holds a line break inside a quoted cell: count records by their id column.
    const rows = await listed(`service=${service}`);
    const ids = (rows as { id: string }[]).map((r) => r.id);
    expect(records.slice(1).filter((r) => /^\d+,/.test(r)).map((r) => r.split(',')[0])).toEqual(ids);
    expect(file.text).toContain(`,'${hostile.actor},`);
    expect(file.text).toContain(`"'=HYPERLINK(""http://evil.example"",""x"")"`);
    expect(file.text).not.toMatch(/(^|,)[=+@-]/m);
    expect(csvCell('-3')).toBe("'-3");
    expect(csvCell(['a', 'b'])).toBe('a b');
    expect(csvCell({ note: '+1' })).toBe('"{""note"":""+1""}"');
  });

  test('an empty match is a header alone; without a format or Accept it is NDJSON', async () => {
    const empty = await download(`service=${service}&status=timed_out&format=csv`);
    expect(empty.text).toBe(`${CSV_COLUMNS.join(',')}\r\n`);
    const plain = await download(`service=${service}&status=failed`);
    expect(plain.type).toBe('application/x-ndjson');
  });

  test('bad input is a 400 naming the field; paging parameters are refused; no token 401; an agent token 403', async () => {
    const bad = await download('format=xlsx&status=sleeping');
    expect(bad.status).toBe(400);
    expect(bad.type).toContain('application/problem+json');
    expect(JSON.parse(bad.text).errors.map((e: { field: string }) => e.field).sort()).toEqual(['format', 'status[0]']);
    expect((await download('limit=5')).status).toBe(400);
    expect((await download(`service=${service}`, null)).status).toBe(401);
    expect((await download(`service=${service}`, TEST_TOKENS.agent)).status).toBe(403);
  });

  test('a client that leaves mid-file gets its connection back to the pool, whole', async () => {
    const bulk = `${service}bulk`;
    await stack.db.query(
      `INSERT INTO tasks (task_id, run_id, seq, status, action, services_touched, actor, outcome)
       SELECT 'bulk-' || n, 'run', 1, 'queued', 'deploy', ARRAY[$1], 'test', jsonb_build_object('pad', repeat('x', 10000))
         FROM generate_series(1, 2000) AS n`,
      [bulk],
    );
    const aborted = new AbortController();
    try {
      const res = await fetch(`${stack.baseUrl}/api/v1/audit/export?service=${bulk}`, {
        headers: { authorization: `Bearer ${TEST_TOKENS.viewer}` },
        signal: aborted.signal,
      });
      const first = await res.body!.getReader().read();
      expect(new TextDecoder().decode(first.value).startsWith('{')).toBe(true);
    } finally {
      aborted.abort();
    }
    const { pool } = stack.db;
    await eventually(async () => (pool.waitingCount === 0 && pool.idleCount === pool.totalCount ? true : undefined), 10_000);
    // The connection given back is whole: the next export on the same pool answers every row.
    const whole = await download(`service=${bulk}&format=ndjson`);
    expect(whole.text.trimEnd().split('\n')).toHaveLength(2000);
  });

  test('the OpenAPI document describes it with both media types', async () => {
    const doc = (await api(stack.baseUrl, 'GET', '/api/v1/openapi.json', undefined, null)).json;
    const operation = doc.paths['/api/v1/audit/export'].get;
    expect(Object.keys(operation.responses['200'].content).sort()).toEqual(['application/x-ndjson', 'text/csv']);
    expect(operation.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['format', 'service', 'from', 'to']));
    expect(operation.parameters.map((p: { name: string }) => p.name)).not.toContain('cursor');
  });
});
