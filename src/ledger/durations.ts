import { inferIntents, parseIntent, type DurationReport, type DurationVsEstimate, type IntentDurations, type Json } from '../../contracts';
import type { Db } from '../db/pool';
import { splitOnWholeHours } from './auditAggregates';
import type { TimeRange } from './auditFilters';
import { microsToIso } from './micros';
import { inOneSnapshot } from './snapshot';

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

/** The running sums per intent, as sql/006_audit_splits.sql keeps them (milliseconds). */
type Sums = {
  runs: number;
  actual_ms: number;
  estimated: number;
  estimated_ms: number;
  estimated_actual_ms: number;
  abs_error_ms: number;
  longer: number;
  shorter: number;
};
const SUM_NAMES = ['runs', 'actual_ms', 'estimated', 'estimated_ms', 'estimated_actual_ms', 'abs_error_ms', 'longer', 'shorter'] as const;

/**
 * The intent series' totals before the end and before the start of the whole hours ($3, $4),
 * narrowed by action ($1) and service ($2). An intent's name is <action>_<service>, and actions
 * have no '_'.
 */
const TOTALS_SQL = `
  SELECT c.name, hi.durations AS hi, lo.durations AS lo
  FROM ledger_count_series c
  LEFT JOIN LATERAL (
    SELECT r.durations FROM ledger_running_totals r
    WHERE r.series_id = c.series_id AND r.hour < $3::timestamptz ORDER BY r.hour DESC LIMIT 1
  ) AS hi ON true
  LEFT JOIN LATERAL (
    SELECT r.durations FROM ledger_running_totals r
    WHERE r.series_id = c.series_id AND r.hour < $4::timestamptz ORDER BY r.hour DESC LIMIT 1
  ) AS lo ON true
  WHERE c.dimension = 'intent'
    AND ($1::text IS NULL OR split_part(c.name, '_', 1) = $1::text)
    AND ($2::text IS NULL OR substr(c.name, strpos(c.name, '_') + 1) = $2::text)`;

/**
 * Runs counted one by one: the partial hours at the range's ends ([$1, $2), [$3, $4)) from tasks,
 * and the runs in the whole hours ([$5, $6)) that the totals do not count yet; $7 an action, $8 a
 * service.
 */
const RUNS_SQL = `
  SELECT r.action, r.services, r.wall_ms::float8 AS wall_ms, r.estimated_ms::float8 AS estimated_ms
  FROM (
    SELECT t.action, t.services_touched AS services,
           ledger_run_ms(t.status, t.resources_used, 'wallTimeS') AS wall_ms,
           ledger_run_ms(t.status, t.resources_used, 'estimatedDurationS') AS estimated_ms
    FROM tasks t
    WHERE t.status IN ('succeeded', 'failed')
      AND ((t.created_at >= $1::timestamptz AND t.created_at < $2::timestamptz)
        OR (t.created_at >= $3::timestamptz AND t.created_at < $4::timestamptz))
    UNION ALL
    SELECT u.action, u.services, u.wall_ms, u.estimated_ms
    FROM ledger_uncounted_rows() u
    WHERE u.created_at >= $5::timestamptz AND u.created_at < $6::timestamptz
  ) AS r
  WHERE r.wall_ms IS NOT NULL
    AND ($7::text IS NULL OR r.action = $7::text)
    AND ($8::text IS NULL OR r.services @> ARRAY[$8::text])`;

type TotalsRow = { name: string; hi: Partial<Sums> | null; lo: Partial<Sums> | null };
type RunRow = { action: string; services: string[]; wall_ms: number; estimated_ms: number | null };

export function createDurationQueries(db: Db) {
  return {
    /** Estimated against actual duration per intent over the runs that ended in the range. */
    async durations(range: TimeRange, narrow: { service?: string; action?: string } = {}): Promise<DurationReport> {
      const { whole, edges } = splitOnWholeHours(range);
      const [totals, runs] = await inOneSnapshot(db, async (client) => [
        whole.from < whole.to
          ? (await client.query<TotalsRow>(TOTALS_SQL, [narrow.action ?? null, narrow.service ?? null, microsToIso(whole.to), microsToIso(whole.from)])).rows
          : [],
        (
          await client.query<RunRow>(RUNS_SQL, [
            ...edges.flatMap((e) => [microsToIso(e.from), microsToIso(e.to)]),
            microsToIso(whole.from),
            microsToIso(whole.to),
            narrow.action ?? null,
            narrow.service ?? null,
          ])
        ).rows,
      ]);
      const sums = new Map<string, Sums>();
      const sumsOf = (intent: string) => {
        const found = sums.get(intent) ?? emptySums();
        sums.set(intent, found);
        return found;
      };
      for (const row of totals) {
        const s = sumsOf(row.name);
        for (const name of SUM_NAMES) s[name] += (row.hi?.[name] ?? 0) - (row.lo?.[name] ?? 0);
      }
      for (const run of runs) {
        const services = narrow.service === undefined ? run.services : [narrow.service];
        for (const intent of inferIntents(run.action, services)) addRun(sumsOf(intent), run);
      }
      return {
        from: microsToIso(range.from),
        to: microsToIso(range.to),
        intents: [...sums]
          .filter(([, s]) => s.runs > 0)
          .map(([intent, s]) => intentDurations(intent, s))
          .sort((a, b) => b.runs - a.runs || (a.intent < b.intent ? -1 : a.intent > b.intent ? 1 : 0)),
      };
    },
  };
}

function emptySums(): Sums {
  return Object.fromEntries(SUM_NAMES.map((n) => [n, 0])) as Sums;
}

/** What one run adds to its intent's sums: the same amounts as the catch-up adds to the totals. */
function addRun(s: Sums, run: RunRow): void {
  s.runs += 1;
  s.actual_ms += run.wall_ms;
  if (run.estimated_ms === null) return;
  s.estimated += 1;
  s.estimated_ms += run.estimated_ms;
  s.estimated_actual_ms += run.wall_ms;
  s.abs_error_ms += Math.abs(run.wall_ms - run.estimated_ms);
  if (run.wall_ms > run.estimated_ms) s.longer += 1;
  if (run.wall_ms < run.estimated_ms) s.shorter += 1;
}

function intentDurations(intent: string, s: Sums): IntentDurations {
  const { action, service } = parseIntent(intent)!;
  const perEstimated = (ms: number) => (s.estimated === 0 ? null : round(ms / s.estimated / 1000));
  return {
    intent,
    action,
    service,
    runs: s.runs,
    meanActualS: round(s.actual_ms / s.runs / 1000),
    estimated: s.estimated,
    meanEstimatedS: perEstimated(s.estimated_ms),
    meanErrorS: perEstimated(s.estimated_actual_ms - s.estimated_ms),
    meanAbsoluteErrorS: perEstimated(s.abs_error_ms),
    actualOverEstimate: s.estimated === 0 || s.estimated_ms === 0 ? null : round(s.estimated_actual_ms / s.estimated_ms),
    longerThanEstimated: s.longer,
    shorterThanEstimated: s.shorter,
  };
}
