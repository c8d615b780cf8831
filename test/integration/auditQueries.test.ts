import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Client } from 'pg';
import { buildOpenApiDocument, createOpenApiRegistry } from '../../src/api/openapi';
import { auditRouter } from '../../src/api/routes/audit';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/db/databases';
import { migrate } from '../../src/db/migrate';
import { createDb, type Db } from '../../src/db/pool';
import { MICROS_PER_HOUR, microsToIso, nowMicros } from '../../src/ledger/micros';
import type { AuditQueries } from '../../src/ledger/auditQueries';
import { createLedgerRepository } from '../../src/ledger/repository';
import { sqlDir } from '../../src/paths';
import { ACTIONS, FAILURE_CLASSES, TASK_STATUSES, type TaskStatus } from '../../contracts';
import { startAuditApi, type AuditApi } from '../support/auditApi';
import { planOfAuditQuery } from '../support/queryPlan';
import { testEnv } from '../support/testEnv';
import { mulberry32 } from '../support/seeded';

/**
 * The audit endpoints against a brute-force reference computed here over the exact fixture of a
 * scratch database: every page of every filter combination, and every aggregate, must equal it.
 * Part of the fixture exists before sql/002_ledger_totals.sql is applied (the first catch-up
 * counts it), the rest is appended afterwards in batches, single rows and back-dated rows (the
 * catch-ups count them).
 */

const NOW_MS = Math.floor(Date.now() / 1000) * 1000;
const NOW = nowMicros(NOW_MS);
const MINUTE = 60_000_000n;
const HOUR = MICROS_PER_HOUR;
const DAY = 24n * HOUR;
const SERVICES = ['kuma', 'dns', 'auth', 'portals', 'gpu', 'mail'];
const AGENTS = ['agent-a', 'agent-b', 'agent-c'];
const FINAL: TaskStatus[] = ['succeeded', 'failed', 'cancelled', 'timed_out'];
// What the failure endpoints mean by a failure: every final row that did not succeed.
const FAILURES: TaskStatus[] = ['failed', 'cancelled', 'timed_out'];
const CURSOR_SECRET = crypto.randomBytes(24).toString('base64url');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

type FixtureRow = {
  taskId: string;
  seq: number;
  status: TaskStatus;
  action: string;
  services: string[];
  agent: string | null;
  failureClass: string | null;
  outcome: Json;
  micros: bigint;
};

/** A row as the reference knows it: the fixture row with the id the ledger gave it. */
type RefRow = FixtureRow & { id: bigint };

// ---------------------------------------------------------------------------------------------
// The fixture: about 2,000 rows of tasks over ten days, from a fixed seed.

function generateFixture(): FixtureRow[] {
  const random = mulberry32(20261126);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const span = Number(10n * DAY - MINUTE);
  const rows: FixtureRow[] = [];
  for (let task = 0; rows.length < 2000; task++) {
    const start = NOW - 10n * DAY + BigInt(Math.floor(random() * span));
    const first = pick(SERVICES);
    const second = pick(SERVICES);
    // Mostly one service, some two, and now and then one listed twice (the database allows it).
    const services = random() < 0.2 ? [first, second] : random() < 0.03 ? [first, first] : [first];
    const action = pick(ACTIONS);
    const agent = random() < 0.1 ? null : pick(AGENTS);
    const paused = random() < 0.15;
    const final = pick([...FINAL, 'succeeded', 'succeeded', 'failed'] as TaskStatus[]);
    const lifecycle: TaskStatus[] = paused ? ['queued', 'paused', 'resumed', 'dispatched', final] : ['queued', 'dispatched', final];
    // Some tasks record every row in the same microsecond: the id must order them.
    const sameInstant = random() < 0.05;
    let at = start;
    lifecycle.forEach((status, i) => {
      if (!sameInstant && i > 0) at += BigInt(1 + Math.floor(random() * 30 * 60_000_000));
      rows.push({
        taskId: `task-${task}`,
        seq: i + 1,
        status,
        action,
        services,
        agent: status === 'queued' || status === 'paused' || status === 'resumed' ? null : agent,
        failureClass: failureClassOf(status, random, pick),
        outcome: FINAL.includes(status) ? outcomeOf(random, pick) : null,
        micros: at > NOW - MINUTE ? NOW - MINUTE : at,
      });
    });
  }
  return rows.slice(0, 2000);
}

function failureClassOf(status: TaskStatus, random: () => number, pick: <T>(l: readonly T[]) => T): string | null {
  if (status === 'failed') return random() < 0.05 ? null : pick(FAILURE_CLASSES);
  if (status === 'timed_out') return 'timeout';
  if (status === 'cancelled') return 'cancelled';
  return null;
}

function outcomeOf(random: () => number, pick: <T>(l: readonly T[]) => T): Json {
  const r = random();
  if (r < 0.1) return null; // nothing ran
  if (r < 0.13) return { result: 'odd', counts: { changed: '3' } }; // not a number: not "changed"
  return { result: 'done', exitCode: 0, counts: { ok: 3, changed: pick([0, 0, 1, 2, 7]), failed: 0 } };
}

// ---------------------------------------------------------------------------------------------
// The brute-force reference

type Filter = {
  statuses?: TaskStatus[];
  services?: string[];
  actions?: string[];
  failureClass?: string;
  agent?: string;
  taskId?: string;
  changed?: boolean;
  from?: bigint;
  to?: bigint;
};

function changedSomething(row: RefRow): boolean {
  const counts = (row.outcome as { counts?: { changed?: unknown } } | null)?.counts;
  return typeof counts?.changed === 'number' && counts.changed > 0;
}

function matches(row: RefRow, f: Filter): boolean {
  return (
    (!f.statuses || f.statuses.includes(row.status)) &&
    (f.services ?? []).every((s) => row.services.includes(s)) &&
    (f.actions ?? []).every((a) => row.action === a) &&
    (f.failureClass === undefined || row.failureClass === f.failureClass) &&
    (f.agent === undefined || row.agent === f.agent) &&
    (f.taskId === undefined || row.taskId === f.taskId) &&
    (f.changed === undefined || (FINAL.includes(row.status) && changedSomething(row) === f.changed)) &&
    (f.from === undefined || row.micros >= f.from) &&
    (f.to === undefined || row.micros < f.to)
  );
}

const newestFirst = (a: RefRow, b: RefRow) =>
  a.micros !== b.micros ? (a.micros > b.micros ? -1 : 1) : a.id > b.id ? -1 : a.id < b.id ? 1 : 0;

function reference(rows: RefRow[], f: Filter): string[] {
  return rows.filter((r) => matches(r, f)).sort(newestFirst).map((r) => r.id.toString());
}

const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
const inRange = (r: RefRow, from: bigint, to: bigint) => r.micros >= from && r.micros < to;
const distinct = (list: string[]) => [...new Set(list)];

function referenceByService(rows: RefRow[], from: bigint, to: bigint) {
  const byService = new Map<string, Record<TaskStatus, number>>();
  for (const row of rows.filter((r) => inRange(r, from, to))) {
    for (const service of distinct(row.services)) {
      const counts = byService.get(service) ?? zeros(TASK_STATUSES);
      counts[row.status] += 1;
      byService.set(service, counts);
    }
  }
  return [...byService.keys()].sort().map((service) => {
    const byStatus = byService.get(service)!;
    return { service, total: Object.values(byStatus).reduce((a, b) => a + b, 0), byStatus };
  });
}

function referenceIntents(rows: RefRow[], from: bigint, to: bigint, service?: string, action?: string) {
  const counts = new Map<string, { intent: string; action: string; service: string; count: number }>();
  for (const row of rows.filter((r) => r.status === 'queued' && inRange(r, from, to))) {
    for (const s of distinct(row.services)) {
      if ((service !== undefined && s !== service) || (action !== undefined && row.action !== action)) continue;
      const intent = `${row.action}_${s}`;
      const entry = counts.get(intent) ?? { intent, action: row.action, service: s, count: 0 };
      entry.count += 1;
      counts.set(intent, entry);
    }
  }
  return [...counts.values()].sort((a, b) => b.count - a.count || (a.intent < b.intent ? -1 : 1));
}

function referenceSummary(rows: RefRow[], from: bigint, to: bigint, service?: string) {
  const failed = rows.filter(
    (r) => FAILURES.includes(r.status) && inRange(r, from, to) && (service === undefined || r.services.includes(service)),
  );
  const byClass = zeros(FAILURE_CLASSES);
  for (const r of failed) if (r.failureClass) byClass[r.failureClass as keyof typeof byClass] += 1;
  return { from: microsToIso(from), to: microsToIso(to), total: failed.length, byClass };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries: query strings as a client would write them, and the filter they mean

type Case = { query: Record<string, string>; filter: Filter };

const timeText = (rows: () => RefRow[]) =>
  fc.oneof(
    // Relative to the router's clock, which is NOW.
    fc.constantFrom('30m', '6h', '36h', '3d', '7d', '2w').map((text) => ({ text, micros: NOW - relative(text) })),
    // Any microsecond in and around the fixture.
    fc.bigInt({ min: NOW - 11n * DAY, max: NOW + HOUR }).map((micros) => ({ text: microsToIso(micros), micros })),
    // Exactly a row's created_at, so that inclusive and exclusive bounds show.
    fc.nat().map((i) => {
      const micros = rows()[i % rows().length]!.micros;
      return { text: microsToIso(micros), micros };
    }),
    // A whole hour, in another offset.
    fc.integer({ min: -264, max: 1 }).map((h) => {
      const micros = (NOW / HOUR) * HOUR + BigInt(h) * HOUR;
      return { text: microsToIso(micros).replace('.000Z', '+00:00'), micros };
    }),
  );

function relative(text: string): bigint {
  const n = BigInt(text.slice(0, -1));
  return n * { m: MINUTE, h: HOUR, d: DAY, w: 7n * DAY }[text.slice(-1) as 'm' | 'h' | 'd' | 'w'];
}

function listCase(rows: () => RefRow[], { failuresOnly }: { failuresOnly: boolean }): fc.Arbitrary<Case> {
  const someService = fc.constantFrom(...SERVICES, 'nowhere');
  return fc
    .record(
      {
        statuses: fc.subarray([...TASK_STATUSES], { minLength: 1, maxLength: 3 }),
        service: someService,
        intent: fc.tuple(fc.constantFrom(...ACTIONS), someService),
        action: fc.constantFrom(...ACTIONS),
        failureClass: fc.constantFrom(...FAILURE_CLASSES),
        agent: fc.constantFrom(...AGENTS),
        taskId: fc.nat().map((i) => rows()[i % rows().length]!.taskId),
        changed: fc.boolean(),
        from: timeText(rows),
        to: timeText(rows),
        limit: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 31, max: 500 })),
      },
      { requiredKeys: ['limit'] },
    )
    .filter((c) => c.from === undefined || c.to === undefined || c.from.micros < c.to.micros)
    .map((c) => {
      const query: Record<string, string> = { limit: String(c.limit) };
      const filter: Filter = {};
      if (!failuresOnly && c.statuses) {
        query.status = c.statuses.join(',');
        filter.statuses = c.statuses;
      }
      if (failuresOnly) filter.statuses = FAILURES;
      if (c.service) query.service = c.service;
      if (!failuresOnly && c.intent) query.intent = `${c.intent[0]}_${c.intent[1]}`;
      const services = distinct([c.service, failuresOnly ? undefined : c.intent?.[1]].filter((s): s is string => !!s));
      if (services.length > 0) filter.services = services;
      if (c.action) query.action = c.action;
      const named: (string | undefined)[] = [c.action, failuresOnly ? undefined : c.intent?.[0]];
      const actions = distinct(named.filter((a): a is string => !!a));
      if (actions.length > 0) filter.actions = actions;
      if (c.failureClass) query.failureClass = filter.failureClass = c.failureClass;
      if (c.agent) query.agent = filter.agent = c.agent;
      if (!failuresOnly && c.taskId) query.taskId = filter.taskId = c.taskId;
      if (!failuresOnly && c.changed !== undefined) {
        query.changed = String(c.changed);
        filter.changed = c.changed;
      }
      if (c.from) {
        query.from = c.from.text;
        filter.from = c.from.micros;
      }
      if (c.to) {
        query.to = c.to.text;
        filter.to = c.to.micros;
      }
      return { query, filter };
    });
}

// ---------------------------------------------------------------------------------------------

describe('audit queries against a brute-force reference', () => {
  const database = `opsledger_audit_${process.pid}_${Date.now()}`;
  let ledgerUrl: string;
  let owner: Client;
  let app: Db;
  let api: AuditApi;
  let baseUrl: string;
  let rows: RefRow[] = [];

  const get = async (pathAndQuery: string) => {
    const res = await fetch(`${baseUrl}${pathAndQuery}`);
    // Bodies are checked field by field against the reference.
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: (await res.json()) as any };
  };
  const qs = (query: Record<string, string>) => new URLSearchParams(query).toString();

  /** Every page of a list, following nextCursor; checks each page's size on the way. */
  async function allPages(endpoint: string, query: Record<string, string>): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      // A cursor that does not move on would page forever.
      expect(ids.length).toBeLessThanOrEqual(rows.length + 500);
      const page = await get(`${endpoint}?${qs(cursor ? { ...query, cursor } : query)}`);
      expect(page.status).toBe(200);
      cursor = page.body.nextCursor;
      if (cursor !== null) expect(page.body.rows).toHaveLength(Number(query.limit));
      for (const row of page.body.rows) ids.push(row.id);
    } while (cursor !== null);
    return ids;
  }

  /** Keeps a property run to about ten pages however many rows match. */
  function boundedLimit(c: Case): Case {
    const expected = reference(rows, c.filter).length;
    const limit = Math.min(500, Math.max(Number(c.query.limit), Math.ceil(expected / 10)));
    return { ...c, query: { ...c.query, limit: String(limit) } };
  }

  async function insertAsOwner(batch: FixtureRow[]): Promise<void> {
    const values: unknown[] = [];
    const tuples = batch.map((r) => {
      const base = values.length;
      values.push(r.taskId, r.seq, r.status, r.action, r.services, r.agent, r.failureClass, r.outcome === null ? null : JSON.stringify(r.outcome), microsToIso(r.micros));
      const p = (i: number) => `$${base + i}`;
      return `(${p(1)}, 'run-1', ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, 'fixture', ${p(7)}, ${p(8)}::jsonb, ${p(9)}::timestamptz)`;
    });
    await owner.query(
      `INSERT INTO tasks (task_id, run_id, seq, status, action, services_touched, agent, actor, failure_class, outcome, created_at)
       VALUES ${tuples.join(', ')}`,
      values,
    );
  }

  async function loadReference(): Promise<RefRow[]> {
    const result = await owner.query(
      `SELECT id::text, task_id, seq, status, action, services_touched, agent, failure_class, outcome,
              (extract(epoch FROM created_at) * 1000000)::bigint::text AS micros
       FROM tasks`,
    );
    return result.rows.map((r) => ({
      id: BigInt(r.id),
      taskId: r.task_id,
      seq: r.seq,
      status: r.status,
      action: r.action,
      services: r.services_touched,
      agent: r.agent,
      failureClass: r.failure_class,
      outcome: r.outcome,
      micros: BigInt(r.micros),
    }));
  }

  beforeAll(async () => {
    await ensureDatabase(testEnv('adminUrl'), database);
    ledgerUrl = databaseUrl(testEnv('adminUrl'), database);

    // The ledger before the running totals: the first days of the fixture, counted by the first catch-up.
    const beforeTotals = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-sql-'));
    for (const file of fs.readdirSync(sqlDir).filter((f) => f.endsWith('.sql') && f < '002')) {
      fs.copyFileSync(path.join(sqlDir, file), path.join(beforeTotals, file));
    }
    await migrate(ledgerUrl, beforeTotals);
    fs.rmSync(beforeTotals, { recursive: true, force: true });

    owner = new Client({ connectionString: ledgerUrl });
    await owner.connect();
    const fixture = generateFixture().sort((a, b) => (a.micros < b.micros ? -1 : a.micros > b.micros ? 1 : 0));
    const backfilled = fixture.filter((r) => r.micros < NOW - 6n * DAY && !(r.micros >= NOW - 8n * DAY && r.micros < NOW - 7n * DAY));
    const backDated = fixture.filter((r) => r.micros >= NOW - 8n * DAY && r.micros < NOW - 7n * DAY);
    const appended = fixture.filter((r) => r.micros >= NOW - 6n * DAY);
    await insertAsOwner(backfilled);
    await migrate(ledgerUrl);

    // After the totals: batches of many rows, single rows, then rows back-dated before existing hours.
    const singles = appended.slice(-40);
    for (let i = 0; i < appended.length - singles.length; i += 150) {
      await insertAsOwner(appended.slice(i, Math.min(i + 150, appended.length - singles.length)));
    }
    for (const row of singles) await insertAsOwner([row]);
    await insertAsOwner(backDated.slice(0, 50));
    // The totals count these back-dated rows now, moving later hours; the rest stay uncounted.
    await owner.query('SELECT ledger_totals_catch_up()');
    for (const row of backDated.slice(50, 60)) await insertAsOwner([row]);
    await insertAsOwner(backDated.slice(60));
    rows = await loadReference();

    app = createDb({ connectionString: ledgerUrl, role: 'opsledger_app', max: 4 });
    api = await startAuditApi(app, { nowMs: NOW_MS, cursorSecret: CURSOR_SECRET });
    baseUrl = api.baseUrl;
  });

  afterAll(async () => {
    await api?.close();
    await app?.close();
    await owner?.end();
    await dropDatabase(testEnv('adminUrl'), database);
  });

  test('the fixture is what the properties assume', () => {
    expect(rows).toHaveLength(2000);
    expect(new Set(rows.map((r) => r.micros)).size).toBeLessThan(rows.length); // shared instants exist
    expect(rows.some((r) => r.micros % 1000n !== 0n)).toBe(true); // sub-millisecond instants exist
  });

  test('created_at survives the round trip through the cursor text exactly', async () => {
    const result = await owner.query(
      `SELECT count(*)::int AS exact FROM tasks t
       JOIN unnest($1::text[], $2::bigint[]) AS r(iso, id) ON r.id = t.id
       WHERE r.iso::timestamptz = t.created_at`,
      [rows.map((r) => microsToIso(r.micros)), rows.map((r) => r.id.toString())],
    );
    expect(result.rows[0].exact).toBe(rows.length);
  });

  test('/audit: every page of any filter combination, concatenated, is the reference list in order', async () => {
    await fc.assert(
      fc.asyncProperty(listCase(() => rows, { failuresOnly: false }), async (generated) => {
        const c = boundedLimit(generated);
        expect(await allPages('/api/v1/audit', c.query)).toEqual(reference(rows, c.filter));
      }),
      { numRuns: 100 },
    );
  });

  test('from is inclusive and to exclusive, to the microsecond', async () => {
    for (const row of rows.filter((_, i) => i % 97 === 0)) {
      const id = row.id.toString();
      const at = await allPages('/api/v1/audit', { from: microsToIso(row.micros), to: microsToIso(row.micros + 1n), limit: '500' });
      expect(at).toEqual(reference(rows, { from: row.micros, to: row.micros + 1n }));
      expect(at).toContain(id);
      const justBefore = await allPages('/api/v1/audit', { from: microsToIso(row.micros - 1n), to: microsToIso(row.micros), limit: '500' });
      expect(justBefore).not.toContain(id);
    }
  });

  test('/audit/failures: the failed rows of any filter combination, page by page', async () => {
    await fc.assert(
      fc.asyncProperty(listCase(() => rows, { failuresOnly: true }), async (generated) => {
        const c = boundedLimit(generated);
        expect(await allPages('/api/v1/audit/failures', c.query)).toEqual(reference(rows, c.filter));
      }),
      { numRuns: 60 },
    );
  });

  test('rows carry their inferred intents', async () => {
    const page = await get('/api/v1/audit?limit=500&status=queued');
    for (const row of page.body.rows) {
      expect(row.intents).toEqual(distinct(row.services).map((s: string) => `${row.action}_${s}`));
    }
    const trail = await get(`/api/v1/audit/tasks/${rows[0]!.taskId}`);
    expect(trail.body.rows[0].intents.length).toBeGreaterThan(0);
  });

  test('aggregates equal brute-force counts over any range, partial hours included', async () => {
    const bound = fc.oneof(
      fc.bigInt({ min: NOW - 11n * DAY, max: NOW + HOUR }),
      fc.integer({ min: -264, max: 1 }).map((h) => (NOW / HOUR) * HOUR + BigInt(h) * HOUR),
      fc.nat().map((i) => rows[i % rows.length]!.micros),
    );
    const range = fc
      .oneof(
        fc.tuple(bound, bound),
        // Within a few hours, where all or most of the range is edge.
        fc.tuple(bound, fc.bigInt({ min: 1n, max: 3n * HOUR })).map(([from, span]) => [from, from + span] as const),
      )
      .filter(([a, b]) => a !== b)
      .map(([a, b]) => (a < b ? { from: a, to: b } : { from: b, to: a }));
    await fc.assert(
      fc.asyncProperty(
        range,
        fc.option(fc.constantFrom(...SERVICES)),
        fc.option(fc.constantFrom(...ACTIONS)),
        async ({ from, to }, service, action) => {
          const window = { from: microsToIso(from), to: microsToIso(to) };

          const summary = await get(`/api/v1/audit/failures/summary?${qs({ ...window, ...(service ? { service } : {}) })}`);
          expect(summary.body).toEqual(referenceSummary(rows, from, to, service ?? undefined));

          const byService = await get(`/api/v1/audit/by-service?${qs(window)}`);
          const expectedServices = referenceByService(rows, from, to);
          expect(byService.body).toEqual({ ...window, services: expectedServices });

          const intents = await get(
            `/api/v1/audit/intents?${qs({ ...window, ...(service ? { service } : {}), ...(action ? { action } : {}) })}`,
          );
          expect(intents.body).toEqual({ ...window, intents: referenceIntents(rows, from, to, service ?? undefined, action ?? undefined) });

          if (service) {
            const detail = await get(`/api/v1/audit/by-service/${service}?${qs(window)}`);
            const counts = expectedServices.find((s) => s.service === service) ?? { total: 0, byStatus: zeros(TASK_STATUSES) };
            expect(detail.body).toMatchObject({ service, ...window, total: counts.total, byStatus: counts.byStatus });
            expect(detail.body.intents).toEqual(
              referenceIntents(rows, from, to, service).map(({ intent, count }) => ({ intent, count })),
            );
            expect(detail.body.recent.map((r: { id: string }) => r.id)).toEqual(
              reference(rows, { services: [service], from, to }).slice(0, 20),
            );
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test('default ranges are the seven days before now', async () => {
    const summary = await get('/api/v1/audit/failures/summary');
    expect(summary.body).toEqual(referenceSummary(rows, NOW - 7n * DAY, NOW));
    const intents = await get('/api/v1/audit/intents?to=1d');
    expect(intents.body.intents).toEqual(referenceIntents(rows, NOW - 8n * DAY, NOW - DAY));
  });

  test('counts stay the same when the totals catch up with every row', async () => {
    const uncounted = await owner.query<{ n: string }>(
      'SELECT count(*) AS n FROM tasks WHERE chain_seq > (SELECT counted_through FROM ledger_totals_progress)',
    );
    expect(Number(uncounted.rows[0]!.n)).toBeGreaterThan(0);
    expect(Number(uncounted.rows[0]!.n)).toBeLessThan(256);
    const ranges = [
      { from: NOW - 9n * DAY, to: NOW },
      { from: NOW - 8n * DAY + 17n * MINUTE, to: NOW - 2n * HOUR - 5n * MINUTE },
    ];
    const answers = async () =>
      Promise.all(
        ranges.map(async ({ from, to }) => {
          const window = qs({ from: microsToIso(from), to: microsToIso(to) });
          return [(await get(`/api/v1/audit/by-service?${window}`)).body, (await get(`/api/v1/audit/failures/summary?${window}`)).body];
        }),
      );
    const before = await answers();
    const caughtUp = await owner.query<{ n: string }>('SELECT ledger_totals_catch_up() AS n');
    expect(caughtUp.rows[0]!.n).toBe(uncounted.rows[0]!.n);
    expect(await answers()).toEqual(before);
    const [first] = ranges;
    expect(before[0]![0]).toEqual({
      from: microsToIso(first!.from),
      to: microsToIso(first!.to),
      services: referenceByService(rows, first!.from, first!.to),
    });
  });

  test('timed-out and cancelled tasks are failures of their own classes', async () => {
    const everything = { from: microsToIso(NOW - 30n * DAY), to: microsToIso(NOW) };
    const ofClass = (failureClass: string) => rows.filter((r) => r.failureClass === failureClass).map((r) => r.id.toString());
    expect(rows.some((r) => r.status === 'timed_out' && r.failureClass === 'timeout')).toBe(true);
    expect(rows.some((r) => r.status === 'cancelled' && r.failureClass === 'cancelled')).toBe(true);

    const summary = await get(`/api/v1/audit/failures/summary?${qs(everything)}`);
    expect(summary.body.byClass).toMatchObject({ timeout: ofClass('timeout').length, cancelled: ofClass('cancelled').length });
    expect(summary.body.total).toBe(rows.filter((r) => FAILURES.includes(r.status)).length);

    const listed = await allPages('/api/v1/audit/failures', { failureClass: 'timeout', limit: '500' });
    expect(listed.sort()).toEqual(ofClass('timeout').sort());
  });

  test('a service the ledger has never seen is a 404', async () => {
    const res = await get('/api/v1/audit/by-service/never-seen');
    expect(res.status).toBe(404);
    expect(res.type).toContain('application/problem+json');
  });

  test.each([
    ['unknown parameter', '/api/v1/audit?servce=kuma', 'servce'],
    ['bad date', '/api/v1/audit?from=last-tuesday', 'from'],
    ['from after to', '/api/v1/audit?from=1h&to=2h', 'from'],
    ['limit 0', '/api/v1/audit?limit=0', 'limit'],
    ['limit 10000', '/api/v1/audit/failures?limit=10000', 'limit'],
    ['SQL as a service', `/api/v1/audit?service=${encodeURIComponent("' OR 1=1 --")}`, 'service'],
    ['SQL as a service name in the path', `/api/v1/audit/by-service/${encodeURIComponent("x' OR '1'='1")}`, 'service'],
    ['unknown status', '/api/v1/audit?status=queued,exploded', 'status[1]'],
    ['status on failures', '/api/v1/audit/failures?status=queued', 'status'],
    ['intent, which /intents does not take', '/api/v1/audit/intents?service=kuma&intent=deploy_kuma', 'intent'],
    ['garbage cursor', '/api/v1/audit?cursor=not-a-cursor', 'cursor'],
  ])('%s is a 400 problem naming the field', async (_name, url, field) => {
    const res = await get(url);
    expect(res.status).toBe(400);
    expect(res.type).toContain('application/problem+json');
    expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual([field]);
  });

  test('a tampered cursor is a 400 naming cursor, a genuine one works', async () => {
    const first = await get('/api/v1/audit?limit=3');
    const cursor: string = first.body.nextCursor;
    const [payload, tag] = cursor.split('.') as [string, string];
    const [micros, id] = Buffer.from(payload, 'base64url').toString().split(':') as [string, string];
    const moved = Buffer.from(`${micros}:${BigInt(id) + 1n}`).toString('base64url');
    for (const bad of [`${moved}.${tag}`, `${payload}.${tag.startsWith('A') ? 'B' : 'A'}${tag.slice(1)}`]) {
      const res = await get(`/api/v1/audit?limit=3&cursor=${encodeURIComponent(bad)}`);
      expect(res.status).toBe(400);
      expect(res.body.errors).toEqual([{ field: 'cursor', message: expect.any(String) }]);
    }
    expect((await get(`/api/v1/audit?limit=3&cursor=${cursor}`)).status).toBe(200);
  });

  test('SQL in a free-text value is only a value', async () => {
    const res = await get(`/api/v1/audit?agent=${encodeURIComponent("x' OR '1'='1")}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ rows: [], nextCursor: null });
  });

  const planOf = (call: (queries: AuditQueries) => Promise<unknown>) => planOfAuditQuery(app, call);

  test('failure lists can use the partial indexes of failures', async () => {
    expect(await planOf((q) => q.failures({ services: ['kuma'] }, { limit: 50 }))).toContain('tasks_failures_created_at_id_idx');
    expect(await planOf((q) => q.failures({ failureClass: 'timeout' }, { limit: 50 }))).toContain(
      'tasks_failure_class_created_at_id_idx',
    );
  });

  test('every audit path is in the OpenAPI document with its query parameters', () => {
    const registry = createOpenApiRegistry();
    auditRouter({ db: app, ledger: createLedgerRepository(app), openapi: registry, cursorSecret: CURSOR_SECRET });
    const paths = buildOpenApiDocument(registry).paths ?? {};
    const parameters = (p: string) => (paths[p]?.get?.parameters ?? []).map((q) => ('name' in q ? q.name : ''));
    expect(parameters('/api/v1/audit')).toEqual(
      expect.arrayContaining(['status', 'service', 'intent', 'action', 'failureClass', 'agent', 'taskId', 'changed', 'from', 'to', 'limit', 'cursor']),
    );
    expect(parameters('/api/v1/audit/failures')).toContain('failureClass');
    expect(parameters('/api/v1/audit/failures/summary')).toEqual(expect.arrayContaining(['service', 'agent', 'action', 'by', 'bucket']));
    expect(parameters('/api/v1/audit/durations')).toEqual(expect.arrayContaining(['from', 'to', 'service', 'action']));
    expect(parameters('/api/v1/audit/by-service')).toEqual(expect.arrayContaining(['from', 'to']));
    expect(parameters('/api/v1/audit/by-service/{service}')).toEqual(expect.arrayContaining(['service', 'from', 'to']));
    expect(parameters('/api/v1/audit/intents')).toEqual(expect.arrayContaining(['service', 'action']));
    expect(paths['/api/v1/audit']?.get?.responses?.['400']).toBeDefined();
  });

  // Last: it appends rows.
  test('paging while rows are appended serves every row present at the first page exactly once', async () => {
    const ledger = createLedgerRepository(app);
    const before = reference(rows, {});
    let appending = true;
    let appended = 0;
    const appender = (async () => {
      while (appending) {
        appended += 1;
        await ledger.append({
          taskId: `live-${appended}`, runId: 'run-live', seq: 1, status: 'queued', action: 'deploy', services: ['kuma'], actor: 'test',
        });
      }
    })();
    try {
      const ids = await allPages('/api/v1/audit', { limit: '97' });
      // Rows appended before the first page may head it; later ones are newer than every cursor
      // position, so the following pages never see them and nothing shifts.
      const headed = ids.slice(0, ids.length - before.length);
      expect(headed.length).toBeLessThan(97);
      expect(headed.every((id) => !before.includes(id))).toBe(true);
      expect(ids.slice(headed.length)).toEqual(before);
    } finally {
      appending = false;
      await appender;
    }
    expect(appended).toBeGreaterThan(1);

    // The application role's appends were counted (the trigger writes as the owner), each once
    // even when an append is retried.
    await ledger.append({ taskId: 'live-1', runId: 'run-live', seq: 1, status: 'queued', action: 'deploy', services: ['kuma'], actor: 'test' });
    const live = await get(`/api/v1/audit/intents?${qs({ service: 'kuma', action: 'deploy', from: microsToIso(NOW), to: microsToIso(NOW + DAY) })}`);
    expect(live.body.intents).toEqual([{ intent: 'deploy_kuma', action: 'deploy', service: 'kuma', count: appended }]);
  });
});
