import {
  FAILURE_CLASSES,
  FAILURE_STATUSES,
  type FailureBucket,
  type FailureClass,
  type FailureGroup,
  type FailureGrouping,
  type FailureSummary,
  type TimeBucket,
} from '../../contracts';
import type { Db } from '../db/pool';
import { ValidationError } from '../errors';
import { splitOnWholeHours } from './auditAggregates';
import type { TimeRange } from './auditFilters';
import { floorDiv, MICROS_PER_DAY, MICROS_PER_HOUR, microsToIso } from './micros';
import { inOneSnapshot } from './snapshot';
import { statusCondition } from './statusCondition';

/**
 * Failures split by service, agent or action, and over time. The running totals
 * (sql/002_ledger_totals.sql, with the agent and action series of sql/006_audit_splits.sql) answer
 * the whole hours of a range: a step's count is the series' total before its end minus the total
 * before its start, one index probe per series and step boundary. The partial hours at the ends
 * and the rows the totals have not counted yet are counted one by one, in the same snapshot.
 *
 * The totals hold one dimension at a time, so a split of narrowed failures (kuma's failures by
 * agent) counts the failures of the range one by one, through the covering partial index of
 * sql/006_audit_splits.sql: exact too, at a cost that grows with the failures in the range.
 */

export type FailureNarrowing = { service?: string; agent?: string; action?: string };
export type FailureBreakdownRequest = { by?: FailureGrouping; bucket?: TimeBucket; narrow: FailureNarrowing };

const BUCKET_MICROS: Record<TimeBucket, bigint> = { hour: MICROS_PER_HOUR, day: MICROS_PER_DAY };

/** A chart of more steps than this is unreadable, and its answer would be megabytes. */
export const MAX_BUCKETS = 2500;

/** A step of a summary over time: the part of the range it covers, also as text (every group answers it). */
export type Step = TimeRange & { fromIso: string; toIso: string };

/** The steps of a range, aligned on UTC hours or days; the first and last are cut to the range. */
export function stepsOf(range: TimeRange, bucket: TimeBucket): Step[] {
  const length = BUCKET_MICROS[bucket];
  const first = floorDiv(range.from, length) * length;
  const count = Number(floorDiv(range.to - 1n - first, length)) + 1;
  if (count > MAX_BUCKETS) {
    throw new ValidationError([
      { field: 'bucket', message: `the range holds ${count} ${bucket}s; at most ${MAX_BUCKETS} steps: choose a longer bucket or a shorter range` },
    ]);
  }
  return Array.from({ length: count }, (_, i) => {
    const start = first + BigInt(i) * length;
    const end = start + length;
    return step(start > range.from ? start : range.from, end < range.to ? end : range.to);
  });
}

function step(from: bigint, to: bigint): Step {
  return { from, to, fromIso: microsToIso(from), toIso: microsToIso(to) };
}

/** The series of the running totals that answer a request: the one counted overall, and the groups'. */
type TotalsPlan = { overall: { dimension: FailureGrouping; name: string | null }; groups?: FailureGrouping };

/** Totals hold one dimension: a split of narrowed failures, or two narrowings, are counted row by row. */
function totalsPlan({ by, narrow }: FailureBreakdownRequest): TotalsPlan | undefined {
  const narrowed = (Object.entries(narrow) as [FailureGrouping, string | undefined][]).filter(([, v]) => v !== undefined);
  if (narrowed.length > 1 || (by && narrowed.length > 0)) return undefined;
  const [dimension, name] = narrowed[0] ?? ['service', null];
  return { overall: { dimension, name: name ?? null }, ...(by ? { groups: by } : {}) };
}

/** $1/$2 the overall series, $3 the grouping's dimension (NULL: none). */
const SERIES_SQL = `
  SELECT c.series_id, c.dimension = $1::text AND c.name IS NOT DISTINCT FROM $2::text AS overall, c.name
  FROM ledger_count_series c
  WHERE (c.dimension = $1::text AND c.name IS NOT DISTINCT FROM $2::text)
     -- The whole ledger's series (service NULL) is no group of a split by service.
     OR (c.dimension = $3::text AND ($3::text <> 'service' OR c.name IS NOT NULL))`;

/**
 * A series' totals at each probe instant $4 (whole hours, ascending): the newest total before it,
 * i.e. the counts of every row created before it. What the totals grew by from one instant to
 * the next was appended in between, so it is counted at the earlier instant (`at`; the first
 * probe is only the base). Few instants (a day's steps, or a range's two ends): one index probe each.
 */
const PROBES_SQL = `
  WITH series AS (${SERIES_SQL})
  SELECT s.overall, s.name, p.i::int AS ord,
         CASE WHEN p.i > 1 THEN (extract(epoch FROM ($4::timestamptz[])[p.i - 1]) * 1000000)::bigint::text END AS at,
         r.failed_by_class
  FROM series s
  CROSS JOIN unnest($4::timestamptz[]) WITH ORDINALITY AS p(at, i)
  LEFT JOIN LATERAL (
    SELECT r.failed_by_class FROM ledger_running_totals r
    WHERE r.series_id = s.series_id AND r.hour < p.at
    ORDER BY r.hour DESC
    LIMIT 1
  ) AS r ON true`;

/**
 * Every hour's totals of the series in the whole hours [$4, $5), after the newest before them as
 * the base: each grew by its own hour's rows, counted at that hour. For hourly steps, where a
 * probe per step would cost more than reading the hours in one scan.
 */
const HOURS_SQL = `
  WITH series AS (${SERIES_SQL})
  SELECT s.overall, s.name, 0 AS ord, NULL::text AS at, base.failed_by_class
  FROM series s
  LEFT JOIN LATERAL (
    SELECT r.failed_by_class FROM ledger_running_totals r
    WHERE r.series_id = s.series_id AND r.hour < $4::timestamptz
    ORDER BY r.hour DESC
    LIMIT 1
  ) AS base ON true
  UNION ALL
  SELECT s.overall, s.name, 1, (extract(epoch FROM r.hour) * 1000000)::bigint::text, r.failed_by_class
  FROM series s
  JOIN ledger_running_totals r ON r.series_id = s.series_id AND r.hour >= $4::timestamptz AND r.hour < $5::timestamptz`;

/**
 * The failures counted one by one: those in [$1, $2) and [$3, $4) from tasks (the partial hours at
 * a range's ends, or the whole range when the totals cannot answer), and those in [$5, $6) that the
 * totals do not count yet. $7-$9 narrow by service, agent and action.
 */
const ROWS_SQL = `
  SELECT f.failure_class, f.agent, f.action, f.services,
         (extract(epoch FROM f.created_at) * 1000000)::bigint::text AS micros
  FROM (
    -- Two ranges, each a plain scan of the covering index (an OR of both made a bitmap of the
    -- heap's pages).
    SELECT t.failure_class, t.agent, t.action, t.services_touched AS services, t.created_at
    FROM tasks t
    WHERE ${statusCondition(FAILURE_STATUSES)} AND t.created_at >= $1::timestamptz AND t.created_at < $2::timestamptz
    UNION ALL
    SELECT t.failure_class, t.agent, t.action, t.services_touched, t.created_at
    FROM tasks t
    WHERE ${statusCondition(FAILURE_STATUSES)} AND t.created_at >= $3::timestamptz AND t.created_at < $4::timestamptz
    UNION ALL
    SELECT u.failure_class, u.agent, u.action, u.services, u.created_at
    FROM ledger_uncounted_rows() u
    WHERE u.status IN ('failed', 'timed_out', 'cancelled')
      AND u.created_at >= $5::timestamptz AND u.created_at < $6::timestamptz
  ) AS f
  -- = ANY, not @>: the services GIN index cannot serve it, so the planner does not AND a bitmap of
  -- every row of the service (135k at 1M rows) into a scan of a few hundred failures.
  WHERE ($7::text IS NULL OR $7::text = ANY (f.services))
    AND ($8::text IS NULL OR f.agent = $8::text)
    AND ($9::text IS NULL OR f.action = $9::text)`;

type TotalsRow = { overall: boolean; name: string | null; ord: number; at: string | null; failed_by_class: Counts | null };
type FailureRow = { failure_class: FailureClass | null; agent: string | null; action: string; services: string[]; micros: string };
type Counts = Record<string, number>;

export function createFailureBreakdown(db: Db) {
  return {
    /** Failures in the range, narrowed, split by `by` and/or over time in `bucket` steps. */
    async failureBreakdown(range: TimeRange, request: FailureBreakdownRequest): Promise<FailureSummary> {
      const steps = request.bucket ? stepsOf(range, request.bucket) : [step(range.from, range.to)];
      const plan = totalsPlan(request);
      const split = splitOnWholeHours(range);
      const whole = plan ? split.whole : { from: range.to, to: range.to };
      const edges = plan ? split.edges : [range, { from: range.to, to: range.to }];
      const [totals, rows] = await inOneSnapshot(db, async (client) => {
        const read =
          plan && whole.from < whole.to
            ? (await client.query<TotalsRow>(...totalsStatement(plan, whole, steps, request.bucket))).rows
            : [];
        const counted = (
          await client.query<FailureRow>(ROWS_SQL, [
            ...edges.flatMap((e) => [microsToIso(e.from), microsToIso(e.to)]),
            microsToIso(whole.from),
            microsToIso(whole.to),
            request.narrow.service ?? null,
            request.narrow.agent ?? null,
            request.narrow.action ?? null,
          ])
        ).rows;
        return [read, counted] as const;
      });

      const overall = new Tally(steps);
      const groups = new Map<string | null, Tally>();
      const groupOf = (key: string | null) => {
        const tally = groups.get(key) ?? new Tally(steps);
        groups.set(key, tally);
        return tally;
      };
      for (const [series, entries] of bySeries(totals)) addDifferences(series.overall ? overall : groupOf(series.name), entries);
      for (const row of rows) {
        const at = BigInt(row.micros);
        overall.add(at, row.failure_class, 1);
        if (request.by) for (const key of groupKeys(row, request.by)) groupOf(key).add(at, row.failure_class, 1);
      }
      return {
        from: microsToIso(range.from),
        to: microsToIso(range.to),
        ...overall.counts(),
        ...(request.by
          ? {
              by: request.by,
              groups: [...groups]
                .filter(([, tally]) => tally.counts().total > 0)
                .map(([key, tally]): FailureGroup => ({ key, ...tally.counts(), ...(request.bucket ? { series: tally.series() } : {}) }))
                .sort(byTotalThenKey),
            }
          : {}),
        ...(request.bucket ? { bucket: request.bucket, series: overall.series() } : {}),
      };
    },
  };
}

/** Hourly steps read every hour's totals; longer steps (or none) probe each step boundary. */
function totalsStatement(plan: TotalsPlan, whole: TimeRange, steps: Step[], bucket: TimeBucket | undefined): [string, unknown[]] {
  const series = [plan.overall.dimension, plan.overall.name, plan.groups ?? null];
  if (bucket === 'hour') return [HOURS_SQL, [...series, microsToIso(whole.from), microsToIso(whole.to)]];
  const inside = steps.map((s) => s.from).filter((at) => at > whole.from && at < whole.to);
  return [PROBES_SQL, [...series, [whole.from, ...inside, whole.to].map(microsToIso)]];
}

/** Each series' entries, base first, in the order their totals grew. */
function bySeries(rows: TotalsRow[]): Map<TotalsRow, TotalsRow[]> {
  const grouped = new Map<string, { series: TotalsRow; entries: TotalsRow[] }>();
  for (const row of rows) {
    const key = JSON.stringify([row.overall, row.name]);
    const entry = grouped.get(key) ?? { series: row, entries: [] };
    grouped.set(key, entry);
    entry.entries.push(row);
  }
  const order = (a: TotalsRow, b: TotalsRow) => a.ord - b.ord || Number(BigInt(a.at ?? '0') - BigInt(b.at ?? '0'));
  return new Map([...grouped.values()].map(({ series, entries }) => [series, entries.sort(order)]));
}

/** What the totals grew by from one entry to the next, counted at the instant the later one names. */
function addDifferences(tally: Tally, entries: TotalsRow[]): void {
  for (let i = 1; i < entries.length; i++) {
    const later = entries[i]!.failed_by_class ?? {};
    const earlier = entries[i - 1]!.failed_by_class ?? {};
    const at = BigInt(entries[i]!.at!);
    for (const failureClass of FAILURE_CLASSES) {
      const n = (later[failureClass] ?? 0) - (earlier[failureClass] ?? 0);
      if (n !== 0) tally.add(at, failureClass, n);
    }
  }
}

/** The groups a failure counts in: its agent, its action, or each service it touches once. */
function groupKeys(row: FailureRow, by: FailureGrouping): (string | null)[] {
  if (by === 'agent') return [row.agent];
  if (by === 'action') return [row.action];
  return [...new Set(row.services)];
}

type TallyCounts = { total: number; byClass: Record<FailureClass, number> };

function emptyCounts(): TallyCounts {
  const byClass = {} as Record<FailureClass, number>;
  for (const failureClass of FAILURE_CLASSES) byClass[failureClass] = 0;
  return { total: 0, byClass };
}

/** Counts of one group (or of all failures): in all, and per step. */
class Tally {
  private readonly all = emptyCounts();
  private readonly perStep: TallyCounts[];

  constructor(private readonly steps: Step[]) {
    this.perStep = steps.map(emptyCounts);
  }

  /** n failures of a class at an instant of the range (counted in the step that holds it). */
  add(at: bigint, failureClass: FailureClass | null, n: number): void {
    const counts = this.perStep[this.stepAt(at)]!;
    for (const c of [this.all, counts]) {
      c.total += n;
      if (failureClass !== null) c.byClass[failureClass] += n;
    }
  }

  /** The step holding an instant: steps are contiguous and ascending. */
  private stepAt(at: bigint): number {
    let [low, high] = [0, this.steps.length - 1];
    if (at < this.steps[low]!.from || at >= this.steps[high]!.to) {
      throw new Error(`failure at ${microsToIso(at)} is outside the summary's range`);
    }
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.steps[mid]!.from <= at) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  counts(): TallyCounts {
    return this.all;
  }

  series(): FailureBucket[] {
    return this.steps.map((s, i) => ({ from: s.fromIso, to: s.toIso, ...this.perStep[i]! }));
  }
}

function byTotalThenKey(a: FailureGroup, b: FailureGroup): number {
  if (b.total !== a.total) return b.total - a.total;
  if (a.key === null || b.key === null) return a.key === null ? 1 : -1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
