import crypto from 'node:crypto';
import { Client } from 'pg';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/db/databases';
import { migrate } from '../../src/db/migrate';
import { createDb, type Db } from '../../src/db/pool';
import { MICROS_PER_HOUR, microsToIso, nowMicros } from '../../src/ledger/micros';
import { FAILURE_CLASSES, type FailureSummary, type TaskStatus } from '../../contracts';
import { startAuditApi, type AuditApi } from '../support/auditApi';
import { opsledger } from '../support/cli';
import { planOfAuditQuery } from '../support/queryPlan';
import { testEnv } from '../support/testEnv';
import { mulberry32 } from '../support/seeded';

/**
 * The failure splits (by service, agent, action, over time) and the estimated-against-actual
 * durations, against references computed independently over a seeded scratch ledger: the splits
 * by plain SQL written another way (date_trunc, count(DISTINCT)), the durations in JS from the
 * seeded values.
 */

const NOW_MS = Math.floor(Date.now() / 1000) * 1000;
const NOW = nowMicros(NOW_MS);
const HOUR = MICROS_PER_HOUR;
const DAY = 24n * HOUR;
const SERVICES = ['kuma', 'dns', 'auth', 'gpu'];
const AGENTS = ['agent-a', 'agent-b', 'agent-c'];
const ACTIONS = ['deploy', 'restart', 'check'];
const FAILURES = ['failed', 'timed_out', 'cancelled'];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type SeedRow = {
  taskId: string;
  seq: number;
  status: TaskStatus;
  action: string;
  services: string[];
  agent: string | null;
  failureClass: string | null;
  resourcesUsed: Json;
  failure: Json;
  micros: bigint;
};

const NO_SPACE = 'No space left on device';

/** 500 tasks over the ten days before now: queued, dispatched (most), and a final row. */
function seedRows(): SeedRow[] {
  const random = mulberry32(20261201);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const rows: SeedRow[] = [];
  for (let task = 0; task < 500; task++) {
    const taskId = `split-${task}`;
    const action = pick(ACTIONS);
    const first = pick(SERVICES);
    const second = pick(SERVICES);
    const services = random() < 0.25 ? [first, second] : random() < 0.05 ? [first, first] : [first];
    const agent = pick(AGENTS);
    const final = pick(['succeeded', 'succeeded', 'failed', 'failed', 'timed_out', 'cancelled'] as const);
    // A task cancelled (or out of time) before dispatch has no agent and no run.
    const dispatched = final === 'succeeded' || final === 'failed' || random() < 0.6;
    const queuedAt = NOW - 10n * DAY + BigInt(Math.floor(random() * Number(10n * DAY - 2n * HOUR)));
    const endedAt = queuedAt + BigInt(1 + Math.floor(random() * Number(HOUR)));
    const base = { taskId, action, services, failureClass: null, resourcesUsed: null, failure: null };
    rows.push({ ...base, seq: 1, status: 'queued', agent: null, micros: queuedAt });
    if (dispatched) rows.push({ ...base, seq: 2, status: 'dispatched', agent, micros: queuedAt + 1n });
    const ran = dispatched && (final === 'succeeded' || final === 'failed');
    const resource = final === 'failed' && random() < 0.4;
    rows.push({
      ...base,
      seq: dispatched ? 3 : 2,
      status: final,
      agent: dispatched ? agent : null,
      failureClass:
        final === 'failed' ? (resource ? 'resource_constraint' : pick(['application_error', 'infrastructure'])) : final === 'timed_out' ? 'timeout' : final === 'cancelled' ? 'cancelled' : null,
      resourcesUsed: ran
        ? {
            wallTimeS: 1 + Math.floor(random() * 120),
            estimatedDurationS: random() < 0.2 ? null : 1 + Math.floor(random() * 120),
            estimateSource: 'plan',
          }
        : null,
      failure: resource
        ? {
            message: NO_SPACE,
            resourceState: { decidedBy: ['resource_message'], messages: [{ rule: 'no_space_left', text: NO_SPACE }], peakMemoryMb: 12, requestedMemoryMb: null },
          }
        : final === 'succeeded'
          ? null
          : { message: `${final} for the test` },
      micros: endedAt,
    });
  }
  return rows.sort((a, b) => (a.micros < b.micros ? -1 : a.micros > b.micros ? 1 : 0));
}

type Split = { by?: string; bucket?: 'hour' | 'day'; service?: string; agent?: string; action?: string };

describe('failure splits and durations against independent references', () => {
  const database = `opsledger_splits_${process.pid}_${Date.now()}`;
  let owner: Client;
  let app: Db;
  let api: AuditApi;
  let seeded: SeedRow[];

  const get = async (path: string, query: Record<string, string | undefined> = {}) => {
    const defined = Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined);
    const res = await fetch(`${api.baseUrl}${path}?${new URLSearchParams(defined)}`);
    return { status: res.status, body: (await res.json()) as any };
  };

  /** Failures per (key, step, class) by plain SQL: the key per row, the step by date_trunc in UTC. */
  async function referenceCounts(from: bigint, to: bigint, split: Split): Promise<{ key: string; step: string; failureClass: string; n: number }[]> {
    const key = { service: 's.service', agent: 't.agent', action: 't.action', none: "'all'" }[split.by ?? 'none'];
    const step = split.bucket ? `to_char(date_trunc('${split.bucket}', t.created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD"T"HH24')` : "''";
    const { rows } = await owner.query(
      `SELECT coalesce(${key}, '(null)') AS key, ${step} AS step, t.failure_class, count(DISTINCT t.id)::int AS n
         FROM tasks t LEFT JOIN LATERAL unnest(t.services_touched) AS s(service) ON true
        WHERE t.status = ANY ($1) AND t.created_at >= $2 AND t.created_at < $3
          AND ($4::text IS NULL OR $4 = ANY (t.services_touched))
          AND ($5::text IS NULL OR t.agent = $5) AND ($6::text IS NULL OR t.action = $6)
        GROUP BY 1, 2, 3`,
      [FAILURES, microsToIso(from), microsToIso(to), split.service ?? null, split.agent ?? null, split.action ?? null],
    );
    return rows.map((r) => ({ key: r.key, step: r.step, failureClass: r.failure_class, n: r.n }));
  }

  type Counts = { total: number; byClass: Record<string, number> };
  const countsOf = (refs: { failureClass: string; n: number }[]): Counts => {
    const byClass: Record<string, number> = Object.fromEntries(FAILURE_CLASSES.map((c) => [c, 0]));
    for (const r of refs) byClass[r.failureClass] = (byClass[r.failureClass] ?? 0) + r.n;
    return { total: refs.reduce((sum, r) => sum + r.n, 0), byClass };
  };
  const stepOf = (iso: string, bucket: 'hour' | 'day') => (bucket === 'hour' ? iso.slice(0, 13) : `${iso.slice(0, 10)}T00`);

  async function expectSplitMatches(from: bigint, to: bigint, split: Split): Promise<void> {
    const res = await get('/api/v1/audit/failures/summary', {
      from: microsToIso(from),
      to: microsToIso(to),
      by: split.by,
      bucket: split.bucket,
      service: split.service,
      agent: split.agent,
      action: split.action,
    });
    expect(res.status).toBe(200);
    const summary = res.body as FailureSummary;
    const overall = await referenceCounts(from, to, { ...split, by: undefined });
    expect({ total: summary.total, byClass: summary.byClass }).toEqual(countsOf(overall));
    if (split.bucket) expectSeries(summary.series ?? [], overall, from, to, split.bucket);
    if (!split.by) return expect(summary.groups).toBeUndefined();
    const keyed = await referenceCounts(from, to, split);
    const keys = [...new Set(keyed.map((r) => r.key))];
    expect(summary.groups!.map((g) => g.key ?? '(null)').sort()).toEqual(keys.sort());
    for (const group of summary.groups!) {
      const refs = keyed.filter((r) => r.key === (group.key ?? '(null)'));
      expect({ key: group.key, total: group.total, byClass: group.byClass }).toEqual({ key: group.key, ...countsOf(refs) });
      if (split.bucket) expectSeries(group.series ?? [], refs, from, to, split.bucket);
    }
    // Most failures first.
    const totals = summary.groups!.map((g) => g.total);
    expect(totals).toEqual([...totals].sort((a, b) => b - a));
  }

  function expectSeries(series: FailureSummary['series'] & {}, refs: { step: string; failureClass: string; n: number }[], from: bigint, to: bigint, bucket: 'hour' | 'day') {
    // Every step, contiguous, cut to the range at both ends.
    expect(series[0]!.from).toBe(microsToIso(from));
    expect(series[series.length - 1]!.to).toBe(microsToIso(to));
    series.slice(1).forEach((s, i) => expect(s.from).toBe(series[i]!.to));
    for (const s of series) {
      expect({ from: s.from, total: s.total, byClass: s.byClass }).toEqual({
        from: s.from,
        ...countsOf(refs.filter((r) => r.step === stepOf(s.from, bucket))),
      });
    }
    expect(series.reduce((sum, s) => sum + s.total, 0)).toBe(countsOf(refs).total);
  }

  beforeAll(async () => {
    await ensureDatabase(testEnv('adminUrl'), database);
    const url = databaseUrl(testEnv('adminUrl'), database);
    await migrate(url);
    owner = new Client({ connectionString: url });
    await owner.connect();
    seeded = seedRows();
    // Every tenth task is appended last, back-dated: the totals of the hours after it must move too.
    const backDated = (r: SeedRow) => Number(r.taskId.slice('split-'.length)) % 10 === 3;
    const inOrder = [...seeded.filter((r) => !backDated(r)), ...seeded.filter(backDated)];
    for (let i = 0; i < inOrder.length; i += 200) {
      const values: unknown[] = [];
      const tuples = inOrder.slice(i, i + 200).map((r) => {
        const at = values.length;
        values.push(r.taskId, r.seq, r.status, r.action, r.services, r.agent, r.failureClass, json(r.resourcesUsed), json(r.failure), microsToIso(r.micros));
        const p = (k: number) => `$${at + k}`;
        return `(${p(1)}, 'run-1', ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, 'seed', ${p(7)}, ${p(8)}::jsonb, ${p(9)}::jsonb, ${p(10)}::timestamptz)`;
      });
      await owner.query(
        `INSERT INTO tasks (task_id, run_id, seq, status, action, services_touched, agent, actor, failure_class, resources_used, failure, created_at)
         VALUES ${tuples.join(', ')}`,
        values,
      );
    }
    app = createDb({ connectionString: url, role: 'opsledger_app', max: 4 });
    api = await startAuditApi(app, { nowMs: NOW_MS, cursorSecret: crypto.randomBytes(24).toString('base64url') });
  });

  afterAll(async () => {
    await api?.close();
    await app?.close();
    await owner?.end();
    await dropDatabase(testEnv('adminUrl'), database);
  });

  const RANGES: [string, bigint, bigint][] = [
    ['the whole ten days', NOW - 11n * DAY, NOW],
    ['partial hours at both ends', NOW - 6n * DAY - 1_234_567n, NOW - DAY - 7n * HOUR + 891n],
  ];
  const SPLITS: Split[] = [];
  for (const by of [undefined, 'service', 'agent', 'action']) {
    for (const bucket of [undefined, 'hour', 'day'] as const) {
      for (const narrow of [{}, { service: 'kuma' }, { agent: 'agent-b' }, { action: 'deploy' }]) {
        if (by || bucket || Object.keys(narrow).length) SPLITS.push({ by, bucket, ...narrow });
      }
    }
  }

  test.each(RANGES)('every split equals the SQL reference over %s', async (_name, from, to) => {
    for (const split of SPLITS) await expectSplitMatches(from, to, split);
  });

  test('every split stays the same once the totals count every row', async () => {
    const [before] = (await owner.query('SELECT counted_through::int AS n FROM ledger_totals_progress')).rows;
    await owner.query('SELECT ledger_totals_catch_up()');
    const [after] = (await owner.query('SELECT counted_through::int AS n FROM ledger_totals_progress')).rows;
    // The seed left rows uncounted, so the first runs counted some of them one by one.
    expect(after.n).toBeGreaterThan(before.n);
    for (const [, from, to] of RANGES) for (const split of SPLITS) await expectSplitMatches(from, to, split);
  });

  test('the splits agree with the plain summary from the running totals', async () => {
    const plain = (await get('/api/v1/audit/failures/summary', { from: '10d' })).body as FailureSummary;
    expect(plain.groups).toBeUndefined();
    expect(plain.total).toBeGreaterThan(100);
    for (const by of ['agent', 'action']) {
      const split = (await get('/api/v1/audit/failures/summary', { from: '10d', by })).body as FailureSummary;
      expect({ total: split.total, byClass: split.byClass }).toEqual({ total: plain.total, byClass: plain.byClass });
      expect(split.groups!.reduce((sum, g) => sum + g.total, 0)).toBe(plain.total);
    }
    // Failures with no agent (ended before dispatch) form a group of their own.
    const byAgent = (await get('/api/v1/audit/failures/summary', { from: '10d', by: 'agent' })).body as FailureSummary;
    expect(byAgent.groups!.some((g) => g.key === null && g.total > 0)).toBe(true);
  });

  test('a bad grouping, a bucket too fine for the range, and an unknown parameter are 400s naming them', async () => {
    const badBy = await get('/api/v1/audit/failures/summary', { by: 'class' });
    expect(badBy.status).toBe(400);
    expect(badBy.body.errors.map((e: { field: string }) => e.field)).toContain('by');
    const tooFine = await get('/api/v1/audit/failures/summary', { from: '2000-01-01T00:00:00Z', bucket: 'hour' });
    expect(tooFine.status).toBe(400);
    expect(tooFine.body.errors).toEqual([expect.objectContaining({ field: 'bucket', message: expect.stringContaining('at most 2500') })]);
    const unknown = await get('/api/v1/audit/durations', { failureClass: 'timeout' });
    expect(unknown.status).toBe(400);
  });

  test('durations per intent equal the means computed from the seeded runs', async () => {
    const from = NOW - 8n * DAY - 1_234n;
    const res = await get('/api/v1/audit/durations', { from: microsToIso(from) });
    expect(res.status).toBe(200);
    const runs = seeded.filter((r) => r.resourcesUsed !== null && r.micros >= from && r.micros < NOW);
    type Expected = { actual: number[]; estimated: number[]; actualOfEstimated: number[] };
    const expected = new Map<string, Expected>();
    for (const run of runs) {
      const { wallTimeS, estimatedDurationS } = run.resourcesUsed as { wallTimeS: number; estimatedDurationS: number | null };
      for (const service of new Set(run.services)) {
        const e = expected.get(`${run.action}_${service}`) ?? { actual: [], estimated: [], actualOfEstimated: [] };
        expected.set(`${run.action}_${service}`, e);
        e.actual.push(wallTimeS);
        if (estimatedDurationS === null) continue;
        e.estimated.push(estimatedDurationS);
        e.actualOfEstimated.push(wallTimeS);
      }
    }
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    expect(res.body.intents.map((i: { intent: string }) => i.intent).sort()).toEqual([...expected.keys()].sort());
    for (const got of res.body.intents) {
      const e = expected.get(got.intent)!;
      const errors = e.actualOfEstimated.map((a, k) => a - e.estimated[k]!);
      expect(got).toMatchObject({
        runs: e.actual.length,
        estimated: e.estimated.length,
        longerThanEstimated: errors.filter((d) => d > 0).length,
        shorterThanEstimated: errors.filter((d) => d < 0).length,
      });
      expect(got.meanActualS).toBeCloseTo(sum(e.actual) / e.actual.length, 2);
      expect(got.meanEstimatedS).toBeCloseTo(sum(e.estimated) / e.estimated.length, 2);
      expect(got.meanErrorS).toBeCloseTo(sum(errors) / errors.length, 2);
      expect(got.meanAbsoluteErrorS).toBeCloseTo(sum(errors.map(Math.abs)) / errors.length, 2);
      expect(got.actualOverEstimate).toBeCloseTo(sum(e.actualOfEstimated) / sum(e.estimated), 2);
    }
    const runsOf = res.body.intents.map((i: { runs: number }) => i.runs);
    expect(runsOf).toEqual([...runsOf].sort((a: number, b: number) => b - a));

    const kuma = await get('/api/v1/audit/durations', { from: microsToIso(from), service: 'kuma', action: 'deploy' });
    expect(kuma.body.intents).toEqual(res.body.intents.filter((i: { intent: string }) => i.intent === 'deploy_kuma'));
    const kumaOnly = await get('/api/v1/audit/durations', { from: microsToIso(from), service: 'kuma' });
    expect(kumaOnly.body.intents).toEqual(res.body.intents.filter((i: { service: string }) => i.service === 'kuma'));
  });

  test('each final row of a run says how far it was from its estimate; other rows say nothing', async () => {
    const run = seeded.find((r) => (r.resourcesUsed as { estimatedDurationS?: number } | null)?.estimatedDurationS)!;
    const { wallTimeS, estimatedDurationS } = run.resourcesUsed as { wallTimeS: number; estimatedDurationS: number };
    const trail = await get(`/api/v1/audit/tasks/${run.taskId}`);
    const final = trail.body.rows.find((r: { seq: number }) => r.seq === run.seq);
    expect(final.duration).toEqual({
      estimatedS: estimatedDurationS,
      actualS: wallTimeS,
      errorS: wallTimeS - estimatedDurationS,
      ratio: Math.round((wallTimeS / estimatedDurationS) * 1000) / 1000,
      estimateSource: 'plan',
    });
    expect(trail.body.rows.find((r: { seq: number }) => r.seq === 1).duration).toBeNull();
    const unestimated = seeded.find((r) => r.resourcesUsed !== null && (r.resourcesUsed as { estimatedDurationS: null }).estimatedDurationS === null)!;
    const listed = await get('/api/v1/audit', { taskId: unestimated.taskId, status: unestimated.status });
    expect(listed.body.rows[0].duration).toMatchObject({ estimatedS: null, errorS: null, ratio: null });
  });

  test('a split of narrowed failures reads the covering index of failures', async () => {
    const week = { from: NOW - 7n * DAY - 17n, to: NOW };
    const plan = await planOfAuditQuery(app, (q) => q.failureBreakdown(week, { by: 'agent', narrow: { service: 'kuma' } }));
    expect(plan).toContain('tasks_failures_breakdown_idx');
  });

  test('opsledger audit failures prints the split as a table and the evidence beside each failure', async () => {
    const env = { OPSLEDGER_API_URL: api.baseUrl, OPSLEDGER_TOKEN: 'unused-by-this-api' };
    const summary = await opsledger(['audit', 'failures', '--summary', '--by', 'service', '--from', '10d'], env);
    expect(summary.stderr).toBe('');
    expect(summary.code).toBe(0);
    const plain = (await get('/api/v1/audit/failures/summary', { from: '10d', by: 'service' })).body as FailureSummary;
    expect(summary.stdout).toContain(`failures from ${plain.from} to ${plain.to}: ${plain.total}`);
    for (const group of plain.groups!) expect(summary.stdout).toMatch(new RegExp(`'${group.key}'\\s*│\\s*${group.total}\\s*│`));

    const list = await opsledger(['audit', 'failures', '--failure-class', 'resource_constraint', '--limit', '3'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`resource_message: no_space_left: ${NO_SPACE}`);

    const json = await opsledger(['audit', 'failures', '--by', 'agent', '--bucket', 'day', '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ by: 'agent', bucket: 'day' });

    const durations = await opsledger(['audit', 'durations', '--from', '10d', '--service', 'kuma'], env);
    expect(durations.code).toBe(0);
    expect(durations.stdout).toContain('actual/estimate');
    expect(durations.stdout).toContain('deploy_kuma');

    const bad = await opsledger(['audit', 'failures', '--summary', '--by', 'class'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('by:');
  });
});

function json(value: Json): string | null {
  return value === null ? null : JSON.stringify(value);
}
