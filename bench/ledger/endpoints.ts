import { parseOrThrow } from '../../src/api/problem';
import type { Db } from '../../src/db/pool';
import {
  AuditQuery,
  DurationsQuery,
  FailureSummaryQuery,
  FailuresQuery,
  IntentsQuery,
  RangeQuery,
  toAuditFilter,
  toTimeRange,
} from '../../src/ledger/auditFilters';
import { microsToIso, nowMicros } from '../../src/ledger/micros';
import { createAuditQueries } from '../../src/ledger/auditQueries';
import { createLedgerRepository } from '../../src/ledger/repository';
import { createTaskLineQueries } from '../../src/ledger/taskLines';
import { ACTIONS, FAILURE_CLASSES, FAILURE_GROUPINGS, TASK_STATUSES } from '../../contracts';
import { AGENTS, SERVICES } from './fixture';
import { recordingDb, seededRandom, summarize, timed, type Statement, type Timings } from './measure';

export const WARMUP_CALLS = 20;
export const MEASURED_CALLS = 200;

type Random = ReturnType<typeof seededRandom>;
type Flags = Record<string, string>;

/** One endpoint's query: `prepare` picks this call's parameters (parsed as the route parses them). */
type EndpointCase = { label: string; prepare(random: Random): { params: string; call: () => Promise<unknown> } };

export type EndpointTiming = {
  label: string;
  timings: Timings;
  /** The slowest measured call: its parameters and the statements it sent. */
  slowest: { params: string; ms: number; statements: Statement[] };
};

const MICROS_PER_MINUTE = 60_000_000n;
const MICROS_PER_DAY = 24n * 60n * MICROS_PER_MINUTE;
const LIST_WINDOWS = [undefined, '24h', '7d', '30d'] as const;
const RANGE_DAYS = [1, 7, 30, 90] as const;
const STATUS_CHOICES = [...TASK_STATUSES, 'failed,timed_out', 'paused,resumed', 'succeeded,failed'];

/**
 * Every audit endpoint's query, called as the routes of src/api/routes/audit.ts call them: the
 * query string parsed with the route's zod schema, turned into a filter or range at the current
 * time, then the query function of src/ledger/auditQueries.ts through the application role's pool.
 * Each call varies its parameters (services, statuses, classes, agents, windows); times cover the
 * query function only, parsing excluded.
 */
export async function timeEndpoints(appDb: Db, taskIds: string[], progress: (line: string) => void): Promise<EndpointTiming[]> {
  const recorder = recordingDb(appDb);
  const cases = endpointCases(recorder.db, taskIds).map((endpoint, index) => ({
    endpoint,
    random: seededRandom(1000 + index),
    samples: [] as number[],
    slowest: { params: '', ms: -1, statements: [] } as EndpointTiming['slowest'],
  }));
  // Round robin, one call of each endpoint in turn, so a burst of load from elsewhere on the
  // machine lands on every endpoint alike instead of on whichever was being measured.
  for (let round = 0; round < WARMUP_CALLS; round += 1) {
    for (const c of cases) await c.endpoint.prepare(c.random).call();
  }
  recorder.take();
  for (let round = 0; round < MEASURED_CALLS; round += 1) {
    for (const c of cases) {
      const { params, call } = c.endpoint.prepare(c.random);
      const { ms } = await timed(call);
      c.samples.push(ms);
      const statements = recorder.take();
      if (ms > c.slowest.ms) c.slowest = { params, ms, statements };
    }
  }
  return cases.map((c) => {
    const timings = summarize(c.samples);
    progress(`${c.endpoint.label}: p50 ${timings.p50.toFixed(2)} ms, p95 ${timings.p95.toFixed(2)} ms, max ${timings.max.toFixed(1)} ms`);
    return { label: c.endpoint.label, timings, slowest: c.slowest };
  });
}

/** The floor under every figure above: a `SELECT 1` round trip through the same pool, as often. */
export async function roundTripFloor(appDb: Db): Promise<Timings> {
  for (let i = 0; i < WARMUP_CALLS; i += 1) await appDb.query('SELECT 1');
  const samples: number[] = [];
  for (let i = 0; i < MEASURED_CALLS; i += 1) samples.push((await timed(() => appDb.query('SELECT 1'))).ms);
  return summarize(samples);
}

function endpointCases(db: Db, taskIds: string[]): EndpointCase[] {
  const audit = createAuditQueries(db);
  const ledger = createLedgerRepository(db);
  const taskLines = createTaskLineQueries(db);
  const list = (flags: Flags) => {
    const query = parseOrThrow(AuditQuery, flags);
    return { params: show(flags), call: () => audit.list(toAuditFilter(query, nowMicros()), { limit: query.limit }) };
  };
  const tasks = (flags: Flags) => {
    const query = parseOrThrow(AuditQuery, flags);
    return { params: show(flags), call: () => taskLines.list(toAuditFilter(query, nowMicros()), { limit: query.limit }) };
  };
  return [
    {
      label: '/audit service=kuma, past week, newest 50',
      prepare: () => list({ service: 'kuma', from: '7d', limit: '50' }),
    },
    {
      label: '/audit status filter',
      prepare: (r) =>
        list({ status: r.pick(STATUS_CHOICES), ...listWindow(r), ...(r.chance(0.3) ? { service: r.pick(SERVICES) } : {}) }),
    },
    {
      label: '/audit intent filter',
      prepare: (r) => list({ intent: `${r.pick(ACTIONS)}_${r.pick(SERVICES)}`, ...listWindow(r) }),
    },
    {
      label: '/audit failureClass filter',
      prepare: (r) => list({ failureClass: r.pick(FAILURE_CLASSES), ...listWindow(r) }),
    },
    {
      label: '/audit agent filter',
      prepare: (r) => list({ agent: r.pick(AGENTS), ...listWindow(r) }),
    },
    {
      label: '/audit/tasks service=kuma, past week, newest 50 task lines',
      prepare: () => tasks({ service: 'kuma', from: '7d', limit: '50' }),
    },
    {
      label: '/audit/tasks, a service or none, any window',
      prepare: (r) => tasks({ ...listWindow(r), ...(r.chance(0.5) ? { service: r.pick(SERVICES) } : {}) }),
    },
    {
      label: '/audit/tasks/:taskId (ledger.trail)',
      prepare: (r) => {
        const taskId = r.pick(taskIds);
        return { params: `taskId=${taskId}`, call: () => ledger.trail(taskId) };
      },
    },
    {
      label: '/audit/failures',
      prepare: (r) => {
        const flags: Flags = {
          ...listWindow(r),
          ...(r.chance(0.4) ? { service: r.pick(SERVICES) } : {}),
          ...(r.chance(0.4) ? { failureClass: r.pick(FAILURE_CLASSES) } : {}),
        };
        const query = parseOrThrow(FailuresQuery, flags);
        return { params: show(flags), call: () => audit.failures(toAuditFilter(query, nowMicros()), { limit: query.limit }) };
      },
    },
    {
      label: '/audit/failures/summary',
      prepare: (r) => {
        const flags: Flags = { ...aggregateRange(r), ...(r.chance(0.5) ? { service: r.pick(SERVICES) } : {}) };
        const query = parseOrThrow(FailureSummaryQuery, flags);
        return { params: show(flags), call: () => audit.failureSummary(toTimeRange(query, nowMicros()), query.service) };
      },
    },
    {
      label: '/audit/failures/summary by= bucket=',
      prepare: (r) => {
        const range = aggregateRange(r);
        // Hourly steps chart the past day or week; longer ranges are drawn by the day.
        const recent = range.from === '1d' || range.from === '7d';
        const flags: Flags = {
          ...range,
          ...(r.chance(0.7) ? { by: r.pick(FAILURE_GROUPINGS) } : {}),
          ...(r.chance(0.6) ? { bucket: recent && r.chance(0.5) ? 'hour' : 'day' } : {}),
        };
        if (!flags.by && !flags.bucket) flags.by = 'agent';
        const query = parseOrThrow(FailureSummaryQuery, flags);
        return { params: show(flags), call: () => audit.failureBreakdown(toTimeRange(query, nowMicros()), { by: query.by, bucket: query.bucket, narrow: {} }) };
      },
    },
    {
      label: '/audit/failures/summary narrowed split (counts rows), 1 or 7 days',
      prepare: (r) => {
        const flags: Flags = { from: r.pick(['1d', '7d']), service: r.pick(SERVICES), by: r.pick(['agent', 'action']) };
        const query = parseOrThrow(FailureSummaryQuery, flags);
        return {
          params: show(flags),
          call: () => audit.failureBreakdown(toTimeRange(query, nowMicros()), { by: query.by, narrow: { service: query.service } }),
        };
      },
    },
    {
      label: '/audit/durations',
      prepare: (r) => {
        const flags: Flags = {
          ...aggregateRange(r),
          ...(r.chance(0.3) ? { service: r.pick(SERVICES) } : {}),
          ...(r.chance(0.3) ? { action: r.pick(ACTIONS) } : {}),
        };
        const query = parseOrThrow(DurationsQuery, flags);
        return {
          params: show(flags),
          call: () => audit.durations(toTimeRange(query, nowMicros()), { service: query.service, action: query.action }),
        };
      },
    },
    {
      label: '/audit/by-service',
      prepare: (r) => {
        const flags = aggregateRange(r);
        const query = parseOrThrow(RangeQuery, flags);
        return { params: show(flags), call: () => audit.byService(toTimeRange(query, nowMicros())) };
      },
    },
    {
      label: '/audit/by-service/:service',
      prepare: (r) => {
        const service = r.pick(SERVICES);
        const flags = aggregateRange(r);
        const query = parseOrThrow(RangeQuery, flags);
        return {
          params: `service=${service} ${show(flags)}`,
          call: () => audit.serviceDetail(service, toTimeRange(query, nowMicros())),
        };
      },
    },
    {
      label: '/audit/intents',
      prepare: (r) => {
        const flags: Flags = {
          ...aggregateRange(r),
          ...(r.chance(0.3) ? { service: r.pick(SERVICES) } : {}),
          ...(r.chance(0.3) ? { action: r.pick(ACTIONS) } : {}),
        };
        const query = parseOrThrow(IntentsQuery, flags);
        return {
          params: show(flags),
          call: () => audit.intents(toTimeRange(query, nowMicros()), { service: query.service, action: query.action }),
        };
      },
    },
  ];
}

/** Row lists: no lower bound, or back 24 hours, 7 days or 30 days from now. */
function listWindow(r: Random): Flags {
  const from = r.pick(LIST_WINDOWS);
  return from === undefined ? {} : { from };
}

/**
 * Aggregates: a day, a week, 30 or 90 days, ending now (relative, as a client sends `from=7d`)
 * or at an instant up to 60 days back, at any minute, so both whole and partial hours vary.
 */
function aggregateRange(r: Random): Flags {
  const days = r.pick(RANGE_DAYS);
  if (r.chance(0.5)) return { from: `${days}d` };
  const to = nowMicros() - BigInt(r.int(60 * 24 * 60)) * MICROS_PER_MINUTE;
  return { from: microsToIso(to - BigInt(days) * MICROS_PER_DAY), to: microsToIso(to) };
}

function show(flags: Flags): string {
  return new URLSearchParams(flags).toString() || '(no filter)';
}
