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
import type { TimeRange } from './auditFilters';
import { statusCondition } from './statusCondition';
import { floorDiv, MICROS_PER_DAY, MICROS_PER_HOUR, microsToIso } from './micros';

/**
 * Failures split by service, agent or action and over time. Unlike the plain summary (hourly
 * running totals, auditAggregates.ts), this counts the failure rows themselves: they are a small
 * part of the ledger, and sql/006_audit_splits.sql gives them a covering partial index, so a
 * week at a million rows is an index-only scan of a few thousand entries.
 */

export type FailureNarrowing = { service?: string; agent?: string; action?: string };
export type FailureBreakdownRequest = { by?: FailureGrouping; bucket?: TimeBucket; narrow: FailureNarrowing };

const BUCKET_MICROS: Record<TimeBucket, bigint> = { hour: MICROS_PER_HOUR, day: MICROS_PER_DAY };

/** A chart of more steps than this is unreadable, and its answer would be megabytes. */
export const MAX_BUCKETS = 2500;

type CountRow = { key: string | null; grouped: boolean; bucket: string | null; failure_class: FailureClass | null; n: number };

/**
 * One statement, one snapshot: the overall counts and the groups' counts come from the same rows,
 * so the groups never disagree with the total beside them. $1-$2 the range, $3 the bucket length
 * (NULL: no buckets), $4 the grouping (NULL: none), $5-$7 the service, agent and action narrowing.
 * Buckets are aligned on the Unix epoch, i.e. on UTC hours and days.
 */
const BREAKDOWN_SQL = `
  WITH failures AS (
    SELECT t.failure_class, t.agent, t.action, t.services_touched,
           CASE WHEN $3::interval IS NOT NULL
                THEN (extract(epoch FROM date_bin($3::interval, t.created_at, 'epoch'::timestamptz)) * 1000000)::bigint
           END AS bucket
    FROM tasks t
    WHERE ${statusCondition(FAILURE_STATUSES)}
      AND t.created_at >= $1::timestamptz AND t.created_at < $2::timestamptz
      AND ($5::text IS NULL OR t.services_touched @> ARRAY[$5::text])
      AND ($6::text IS NULL OR t.agent = $6::text)
      AND ($7::text IS NULL OR t.action = $7::text)
  ),
  keyed AS (
    SELECT NULL::text AS key, false AS grouped, f.bucket, f.failure_class FROM failures f
    UNION ALL
    SELECT k.key, true, f.bucket, f.failure_class
    FROM failures f
    CROSS JOIN LATERAL (
      SELECT f.agent WHERE $4::text = 'agent'
      UNION ALL
      SELECT f.action WHERE $4::text = 'action'
      UNION ALL
      -- A row listing a service twice counts for it once.
      SELECT DISTINCT s FROM unnest(f.services_touched) AS s WHERE $4::text = 'service'
    ) AS k(key)
  )
  SELECT key, grouped, bucket::text AS bucket, failure_class, count(*)::int AS n
  FROM keyed
  GROUP BY 1, 2, 3, 4`;

export function createFailureBreakdown(db: Db) {
  return {
    /** Failures in the range, narrowed, split by `by` and/or over time in `bucket` steps. */
    async failureBreakdown(range: TimeRange, request: FailureBreakdownRequest): Promise<FailureSummary> {
      const steps = request.bucket ? stepsOf(range, request.bucket) : undefined;
      const rows = await db.query<CountRow>(BREAKDOWN_SQL, [
        microsToIso(range.from),
        microsToIso(range.to),
        request.bucket ? `1 ${request.bucket}` : null,
        request.by ?? null,
        request.narrow.service ?? null,
        request.narrow.agent ?? null,
        request.narrow.action ?? null,
      ]);
      const overall = new Tally(steps);
      const groups = new Map<string | null, Tally>();
      for (const row of rows) {
        let tally = overall;
        if (row.grouped) {
          tally = groups.get(row.key) ?? new Tally(steps);
          groups.set(row.key, tally);
        }
        tally.add(row.bucket, row.failure_class, row.n);
      }
      return {
        from: microsToIso(range.from),
        to: microsToIso(range.to),
        ...overall.counts(),
        ...(request.by
          ? {
              by: request.by,
              groups: [...groups]
                .map(([key, tally]): FailureGroup => ({ key, ...tally.counts(), ...(steps ? { series: tally.series() } : {}) }))
                .sort(byTotalThenKey),
            }
          : {}),
        ...(request.bucket && steps ? { bucket: request.bucket, series: overall.series() } : {}),
      };
    },
  };
}

/** A step of a summary over time: the range it covers, and the start of its whole bucket. */
export type Step = TimeRange & { bucketStart: bigint };

/** The steps of a range, aligned on the epoch; the first and last are cut to the range. */
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
    const bucketStart = first + BigInt(i) * length;
    const end = bucketStart + length;
    return { bucketStart, from: bucketStart > range.from ? bucketStart : range.from, to: end < range.to ? end : range.to };
  });
}

type Counts = { total: number; byClass: Record<FailureClass, number> };

function emptyCounts(): Counts {
  return { total: 0, byClass: Object.fromEntries(FAILURE_CLASSES.map((c) => [c, 0])) as Record<FailureClass, number> };
}

/** Counts of one group (or of all failures): in all, and per step when there are steps. */
class Tally {
  private readonly all = emptyCounts();
  private readonly perStep: Counts[];
  private readonly stepIndex: Map<string, number>;

  constructor(private readonly steps: Step[] | undefined) {
    this.perStep = (steps ?? []).map(emptyCounts);
    // The SQL names a row's step by the start of its bucket (date_bin).
    this.stepIndex = new Map((steps ?? []).map((s, i) => [String(s.bucketStart), i]));
  }

  add(bucket: string | null, failureClass: FailureClass | null, n: number): void {
    addTo(this.all, failureClass, n);
    if (bucket === null) return;
    const i = this.stepIndex.get(bucket);
    if (i === undefined) throw new Error(`failure bucket ${bucket} is outside the range's steps`);
    addTo(this.perStep[i]!, failureClass, n);
  }

  counts(): Counts {
    return this.all;
  }

  series(): FailureBucket[] {
    return (this.steps ?? []).map((s, i) => ({ from: microsToIso(s.from), to: microsToIso(s.to), ...this.perStep[i]! }));
  }
}

function addTo(counts: Counts, failureClass: FailureClass | null, n: number): void {
  counts.total += n;
  if (failureClass !== null) counts.byClass[failureClass] += n;
}

function byTotalThenKey(a: FailureGroup, b: FailureGroup): number {
  if (b.total !== a.total) return b.total - a.total;
  if (a.key === null || b.key === null) return a.key === null ? 1 : -1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
