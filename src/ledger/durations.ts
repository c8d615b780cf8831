import { inferIntents, type DurationReport, type DurationVsEstimate, type IntentDurations, type Json } from '../../contracts';
import type { Db } from '../db/pool';
import type { TimeRange } from './auditFilters';
import { statusCondition } from './statusCondition';
import { microsToIso } from './micros';

/**
 * Estimated against actual duration. The workflow estimates a run before dispatch (the plan's
 * figure, else the median of past runs of the same intent: LedgerRepository.medianDuration) and
 * the final row keeps both that estimate and the measured wall time in resources_used.
 */

/** A final row's run against its estimate; null for rows without a measured run. */
export function durationVsEstimate(resourcesUsed: Json | null): DurationVsEstimate | null {
  if (resourcesUsed === null || typeof resourcesUsed !== 'object' || Array.isArray(resourcesUsed)) return null;
  const actualS = finiteNumber(resourcesUsed.wallTimeS);
  if (actualS === null) return null;
  const estimatedS = finiteNumber(resourcesUsed.estimatedDurationS);
  const source = resourcesUsed.estimateSource;
  return {
    estimatedS,
    actualS,
    errorS: estimatedS === null ? null : round(actualS - estimatedS),
    ratio: estimatedS === null || estimatedS <= 0 ? null : round(actualS / estimatedS),
    estimateSource: typeof source === 'string' ? source : null,
  };
}

function finiteNumber(value: Json | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** Three decimals: the wall time itself is measured to the millisecond. */
function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

type DurationRow = {
  action: string;
  service: string;
  runs: number;
  estimated: number;
  median_actual_s: number;
  median_estimated_s: number | null;
  median_error_s: number | null;
  median_ratio: number | null;
  longer: number;
  shorter: number;
};

/**
 * Runs that ended in the range, per (action, service): the final rows that carry a wall time
 * (succeeded and failed runs; a task cancelled or timed out before its playbook ran has none).
 * $1-$2 the range, $3 a service, $4 an action (NULL: any). The final rows are found through
 * sql/006_audit_splits.sql's partial index, which holds only them.
 */
const DURATIONS_SQL = `
  -- Materialized: the sorts of the medians then carry four narrow columns, not the rows' jsonb.
  WITH runs AS MATERIALIZED (
    SELECT t.action, s.service,
           ${jsonNumber("t.resources_used -> 'wallTimeS'")} AS actual,
           ${jsonNumber("t.resources_used -> 'estimatedDurationS'")} AS estimated
    FROM tasks t
    CROSS JOIN LATERAL (SELECT DISTINCT u FROM unnest(t.services_touched) AS u) AS s(service)
    WHERE ${statusCondition(['succeeded', 'failed'])}
      AND t.resources_used ? 'wallTimeS'
      AND t.created_at >= $1::timestamptz AND t.created_at < $2::timestamptz
      AND ($3::text IS NULL OR t.services_touched @> ARRAY[$3::text])
      AND ($4::text IS NULL OR t.action = $4::text)
  )
  SELECT r.action, r.service, count(*)::int AS runs,
         count(r.estimated)::int AS estimated,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.actual) AS median_actual_s,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.estimated) AS median_estimated_s,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.actual - r.estimated) AS median_error_s,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.actual / nullif(r.estimated, 0)) AS median_ratio,
         count(*) FILTER (WHERE r.actual > r.estimated)::int AS longer,
         count(*) FILTER (WHERE r.actual < r.estimated)::int AS shorter
  FROM runs r
  WHERE r.actual IS NOT NULL AND ($3::text IS NULL OR r.service = $3::text)
  GROUP BY 1, 2`;

/** A jsonb number as float8, NULL for anything else (a cast of a string would fail the query). */
function jsonNumber(expression: string): string {
  return `CASE WHEN jsonb_typeof(${expression}) = 'number' THEN (${expression})::float8 END`;
}

export function createDurationQueries(db: Db) {
  return {
    /** Estimated against actual duration per intent over the runs that ended in the range. */
    async durations(range: TimeRange, narrow: { service?: string; action?: string } = {}): Promise<DurationReport> {
      const rows = await db.query<DurationRow>(DURATIONS_SQL, [
        microsToIso(range.from),
        microsToIso(range.to),
        narrow.service ?? null,
        narrow.action ?? null,
      ]);
      return {
        from: microsToIso(range.from),
        to: microsToIso(range.to),
        intents: rows.map(intentDurations).sort((a, b) => b.runs - a.runs || (a.intent < b.intent ? -1 : a.intent > b.intent ? 1 : 0)),
      };
    },
  };
}

function intentDurations(row: DurationRow): IntentDurations {
  const optional = (n: number | null) => (n === null ? null : round(n));
  return {
    intent: inferIntents(row.action, [row.service])[0]!,
    action: row.action,
    service: row.service,
    runs: row.runs,
    estimated: row.estimated,
    medianActualS: round(row.median_actual_s),
    medianEstimatedS: optional(row.median_estimated_s),
    medianErrorS: optional(row.median_error_s),
    medianRatio: optional(row.median_ratio),
    longerThanEstimated: row.longer,
    shorterThanEstimated: row.shorter,
  };
}
