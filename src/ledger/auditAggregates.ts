import {
  FAILURE_CLASSES,
  FAILURE_STATUSES,
  inferIntents,
  TASK_STATUSES,
  type ByService,
  type FailureClass,
  type FailureSummary,
  type IntentCount,
  type IntentCounts,
  type ServiceCounts,
  type ServiceDetail,
  type TaskStatus,
} from '../../contracts';
import type { Db } from '../db/pool';
import type { TimeRange } from './auditFilters';
import type { RowQueries } from './auditRows';
import { floorDiv, MICROS_PER_HOUR, microsToIso } from './micros';
import { statusCondition } from './statusCondition';

/**
 * Audit aggregates: they read the hourly running totals of sql/002_ledger_totals.sql for the whole
 * hours of a range, and count from tasks itself the partial hours at its two ends and the rows the
 * totals do not count yet, so they stay exact at any range.
 */

const RECENT_ROWS = 20;

/** rows: for the newest rows a service's detail shows beside its counts. */
export function createAggregateQueries(db: Db, rows: RowQueries) {
  /** statuses: the only statuses the caller reads, so that rows of others need not be counted one by one. */
  async function countSeries(range: TimeRange, scope: Scope, statuses?: TaskStatus[]) {
    const split = splitOnWholeHours(range);
    const [result] = await db.query<{ whole: WholeRow[]; counted: CountedRows[] }>(COUNT_SERIES_SQL, [
      scope.kind,
      scope.kind === 'service' ? scope.service : null,
      microsToIso(split.whole.from),
      microsToIso(split.whole.to),
      ...split.edges.flatMap((edge) => [microsToIso(edge.from), microsToIso(edge.to)]),
      statuses ?? null,
    ]);
    return seriesCounts(result?.whole ?? [], result?.counted ?? []);
  }

  return {
    /** Failures (failed, timed-out, cancelled rows) in the range by class, of the ledger or one service. */
    async failureSummary(range: TimeRange, service?: string): Promise<FailureSummary> {
      const scope: Scope = service === undefined ? { kind: 'ledger' } : { kind: 'service', service };
      const counts = (await countSeries(range, scope, [...FAILURE_STATUSES])).get(service ?? null);
      return {
        ...isoRange(range),
        total: FAILURE_STATUSES.reduce((sum, status) => sum + (counts?.byStatus[status] ?? 0), 0),
        byClass: fill(FAILURE_CLASSES, counts?.failedByClass),
      };
    },

    /** Rows in the range per service and status; a row touching two services counts for both. */
    async byService(range: TimeRange): Promise<ByService> {
      const counts = await countSeries(range, { kind: 'services' });
      const services = [...counts]
        .flatMap(([service, c]) => (service === null ? [] : [serviceCounts(service, c)]))
        .filter((s) => s.total > 0)
        .sort((a, b) => compareText(a.service, b.service));
      return { ...isoRange(range), services };
    },

    /** One service over the range; undefined when the ledger has never had a row touching it. */
    async serviceDetail(service: string, range: TimeRange): Promise<ServiceDetail | undefined> {
      // Both at once, on two connections: the recent rows of an unknown service are simply not used.
      const [series, recent] = await Promise.all([
        countSeries(range, { kind: 'service', service }),
        rows.list({ services: [service], from: range.from, to: range.to }, { limit: RECENT_ROWS }),
      ]);
      const counts = series.get(service);
      if (!counts) return undefined;
      return {
        ...isoRange(range),
        ...serviceCounts(service, counts),
        intents: intentCounts(service, counts)
          .map(({ intent, count }) => ({ intent, count }))
          .sort(byCountThenIntent),
        recent: recent.rows,
      };
    },

    /**
     * Inferred intents of the tasks queued in the range: each task is counted once per service it
     * touches, by its `queued` row (the first row of every task).
     */
    async intents(range: TimeRange, narrow: { service?: string; action?: string } = {}): Promise<IntentCounts> {
      const scope: Scope = narrow.service === undefined ? { kind: 'services' } : { kind: 'service', service: narrow.service };
      const counts = await countSeries(range, scope, ['queued']);
      const intents = [...counts]
        .flatMap(([service, c]) => (service === null ? [] : intentCounts(service, c)))
        .filter((i) => narrow.action === undefined || i.action === narrow.action)
        .sort(byCountThenIntent);
      return { ...isoRange(range), intents };
    },
  };
}

/** Which series of ledger_count_series' service dimension: the whole ledger (each row once), every service, or one. */
type Scope = { kind: 'ledger' } | { kind: 'services' } | { kind: 'service'; service: string };

type Counts = Record<string, number>;
type SeriesCounts = { byStatus: Counts; failedByClass: Counts; queuedByAction: Counts };
type WholeRow = {
  service: string | null;
  hi_status: Counts | null;
  hi_failed: Counts | null;
  hi_queued: Counts | null;
  lo_status: Counts | null;
  lo_failed: Counts | null;
  lo_queued: Counts | null;
};
/** Rows counted one by one, grouped. */
type CountedRows = { service: string | null; status: TaskStatus; failure_class: FailureClass | null; action: string | null; n: number };

/** $1 the scope kind, $2 the service of a one-service scope; column is the series' service. */
const inScope = (column: string) =>
  `CASE WHEN $1::text = 'ledger' THEN ${column} IS NULL
        WHEN $1::text = 'services' THEN ${column} IS NOT NULL
        ELSE ${column} = $2::text END`;

/**
 * One statement, so that the running totals, their progress mark and the rows counted one by one
 * come from the same snapshot. $1 scope kind, $2 service, [$3, $4) the whole hours, [$5, $6) and
 * [$7, $8) the partial hours at the two ends, $9 the statuses the caller needs counted row by row
 * (NULL: all). The whole hours take two probes per series on the running totals' primary key
 * (the newest row before each end). Counted one by one: the rows of the two partial hours (through
 * tasks_created_at_id_idx) and, in the whole hours, the rows appended since the totals were last
 * brought up to date (at most 256, from ledger_uncounted_rows(); sql/002_ledger_totals.sql).
 */
const COUNT_SERIES_SQL = `
  WITH series AS (
    SELECT series_id, c.name AS service FROM ledger_count_series c WHERE c.dimension = 'service' AND ${inScope('c.name')}
  ),
  whole AS (
    SELECT s.service,
           hi.by_status AS hi_status, hi.failed_by_class AS hi_failed, hi.queued_by_action AS hi_queued,
           lo.by_status AS lo_status, lo.failed_by_class AS lo_failed, lo.queued_by_action AS lo_queued
    FROM series s
    LEFT JOIN LATERAL (
      SELECT r.by_status, r.failed_by_class, r.queued_by_action FROM ledger_running_totals r
      WHERE r.series_id = s.series_id AND r.hour < $4::timestamptz
      ORDER BY r.hour DESC LIMIT 1
    ) AS hi ON true
    LEFT JOIN LATERAL (
      SELECT r.by_status, r.failed_by_class, r.queued_by_action FROM ledger_running_totals r
      WHERE r.series_id = s.series_id AND r.hour < $3::timestamptz
      ORDER BY r.hour DESC LIMIT 1
    ) AS lo ON true
  ),
  uncounted AS (
    SELECT t.status, t.failure_class, t.action, t.services_touched
    FROM tasks t
    WHERE (t.created_at >= $5::timestamptz AND t.created_at < $6::timestamptz)
       OR (t.created_at >= $7::timestamptz AND t.created_at < $8::timestamptz)
    UNION ALL
    SELECT u.status, u.failure_class, u.action, u.services AS services_touched
    FROM ledger_uncounted_rows() u
    WHERE u.created_at >= $3::timestamptz AND u.created_at < $4::timestamptz
  ),
  counted AS (
    -- Besides its status, the counts keep only a failure's class and a queued row's action
    -- (seriesCounts): grouping by nothing more keeps the groups, and the JSON, a fraction the size.
    SELECT s.service, t.status,
           CASE WHEN ${statusCondition(FAILURE_STATUSES)} THEN t.failure_class END AS failure_class,
           CASE WHEN t.status = 'queued' THEN t.action END AS action,
           count(*)::int AS n
    FROM uncounted t
    -- Each row once for the whole ledger (NULL) and once per service it touches.
    CROSS JOIN LATERAL (
      SELECT NULL::text
      UNION ALL
      SELECT u.service FROM unnest(t.services_touched) WITH ORDINALITY AS u(service, i)
      WHERE u.service <> ALL (t.services_touched[:u.i - 1])
    ) AS s(service)
    WHERE ($9::text[] IS NULL OR t.status = ANY ($9::text[]))
      AND ${inScope('s.service')}
    GROUP BY 1, 2, 3, 4
  )
  SELECT (SELECT coalesce(json_agg(whole), '[]') FROM whole) AS whole,
         (SELECT coalesce(json_agg(counted), '[]') FROM counted) AS counted`;

/**
 * [from, to) as the whole UTC hours inside it plus the partial hours at both ends. A range within
 * one hour (or two partial ones) has no whole hours: then it is all edge.
 */
export function splitOnWholeHours(range: TimeRange): { whole: TimeRange; edges: [TimeRange, TimeRange] } {
  const firstWhole = -floorDiv(-range.from, MICROS_PER_HOUR) * MICROS_PER_HOUR;
  const endWhole = floorDiv(range.to, MICROS_PER_HOUR) * MICROS_PER_HOUR;
  if (firstWhole >= endWhole) {
    return { whole: { from: range.to, to: range.to }, edges: [range, { from: range.to, to: range.to }] };
  }
  return {
    whole: { from: firstWhole, to: endWhole },
    edges: [
      { from: range.from, to: firstWhole },
      { from: endWhole, to: range.to },
    ],
  };
}

/** Per series: totals before the range's end minus totals before its start, plus the rows counted one by one. */
function seriesCounts(whole: WholeRow[], counted: CountedRows[]): Map<string | null, SeriesCounts> {
  const bySeries = new Map<string | null, SeriesCounts>();
  for (const w of whole) {
    bySeries.set(w.service, {
      byStatus: difference(w.hi_status, w.lo_status),
      failedByClass: difference(w.hi_failed, w.lo_failed),
      queuedByAction: difference(w.hi_queued, w.lo_queued),
    });
  }
  for (const e of counted) {
    const counts = bySeries.get(e.service) ?? { byStatus: {}, failedByClass: {}, queuedByAction: {} };
    bySeries.set(e.service, counts);
    add(counts.byStatus, e.status, e.n);
    if (e.failure_class !== null) add(counts.failedByClass, e.failure_class, e.n);
    if (e.action !== null && e.service !== null) add(counts.queuedByAction, e.action, e.n);
  }
  return bySeries;
}

function difference(later: Counts | null, earlier: Counts | null): Counts {
  const result: Counts = {};
  for (const [name, n] of Object.entries(later ?? {})) {
    const d = n - (earlier?.[name] ?? 0);
    if (d !== 0) result[name] = d;
  }
  return result;
}

function add(counts: Counts, name: string, n: number): void {
  counts[name] = (counts[name] ?? 0) + n;
}

function fill<K extends string>(keys: readonly K[], counts: Counts | undefined): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, counts?.[k] ?? 0])) as Record<K, number>;
}

function serviceCounts(service: string, counts: SeriesCounts): ServiceCounts {
  const byStatus = fill(TASK_STATUSES, counts.byStatus);
  return { service, total: Object.values(byStatus).reduce((a, b) => a + b, 0), byStatus };
}

function intentCounts(service: string, counts: SeriesCounts): IntentCount[] {
  return Object.entries(counts.queuedByAction)
    .filter(([, count]) => count > 0)
    .map(([action, count]) => ({ intent: inferIntents(action, [service])[0]!, action, service, count }));
}

function byCountThenIntent(a: { intent: string; count: number }, b: { intent: string; count: number }): number {
  return b.count - a.count || compareText(a.intent, b.intent);
}

/** Code-point order, the same on every machine (localeCompare depends on the locale). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isoRange(range: TimeRange): { from: string; to: string } {
  return { from: microsToIso(range.from), to: microsToIso(range.to) };
}
