-- The failure splits (by agent and by action, and over time) and estimated against actual
-- duration, from the running totals of 002_ledger_totals.sql, so that they answer any range in
-- near-constant time as the other aggregates do (src/ledger/failureBreakdown.ts, durations.ts).
--
-- Series gain a dimension. 'service' is what there was: the whole ledger (name NULL) and each
-- service. New:
--   'agent'   failures per agent (name NULL: failures of tasks never dispatched)   failed_by_class
--   'action'  failures per action                                                  failed_by_class
--   'intent'  runs per intent, <action>_<service>, a run being a final row with    durations
--             a measured wall time (succeeded or failed after the playbook ran)
-- The new dimensions count only what they are for, so each appended row adds at most one agent,
-- one action and one intent per service to the work of a catch-up.
--
-- durations holds running sums, as integers so that ledger_counts_merge adds them exactly:
--   runs, actual_ms            every run
--   estimated                  runs that had an estimate, and over those:
--   estimated_ms, estimated_actual_ms, abs_error_ms, longer, shorter

ALTER TABLE ledger_count_series RENAME COLUMN service TO name;
ALTER TABLE ledger_count_series
  ADD COLUMN dimension text NOT NULL DEFAULT 'service'
    CHECK (dimension IN ('service', 'agent', 'action', 'intent'));
ALTER TABLE ledger_count_series DROP CONSTRAINT ledger_count_series_service_key;
ALTER TABLE ledger_count_series ADD CONSTRAINT ledger_count_series_key UNIQUE NULLS NOT DISTINCT (dimension, name);

COMMENT ON TABLE ledger_count_series IS
  'Series of ledger_running_totals: dimension service with name NULL counts every ledger row once, a service name the rows that touch it; agent and action count failures, intent counts runs (006_audit_splits.sql).';

ALTER TABLE ledger_running_totals ADD COLUMN durations jsonb NOT NULL DEFAULT '{}';

ALTER TYPE ledger_counted_row ADD ATTRIBUTE agent text, ADD ATTRIBUTE wall_ms bigint, ADD ATTRIBUTE estimated_ms bigint;

-- A run's wall time and estimate in milliseconds, NULL for rows without a run (or without an
-- estimate): what resources_used holds is written by the workflow, but a non-number must not fail
-- the append that counts it.
CREATE FUNCTION ledger_run_ms(status text, resources_used jsonb, field text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN status IN ('succeeded', 'failed')
     AND jsonb_typeof(resources_used -> 'wallTimeS') = 'number'
     AND jsonb_typeof(resources_used -> field) = 'number'
    THEN round((resources_used ->> field)::numeric * 1000)::bigint
  END
$$;

CREATE OR REPLACE FUNCTION ledger_uncounted_rows() RETURNS SETOF ledger_counted_row
LANGUAGE plpgsql STABLE ROWS 256 AS $$
DECLARE
  counted constant bigint := (SELECT counted_through FROM ledger_totals_progress);
  newest constant bigint := (SELECT max(chain_seq) FROM tasks);
BEGIN
  RETURN QUERY
    SELECT t.status, t.action, t.services_touched, t.failure_class, t.created_at, t.agent,
           ledger_run_ms(t.status, t.resources_used, 'wallTimeS'),
           ledger_run_ms(t.status, t.resources_used, 'estimatedDurationS')
      FROM tasks t WHERE t.chain_seq > counted AND t.chain_seq <= newest;
END
$$;

-- The series a counted row belongs to: the whole ledger, each service it touches (once, even if
-- listed twice), and, for a failure, its agent and action, for a run, each of its intents.
CREATE FUNCTION ledger_row_series(b ledger_counted_row) RETURNS TABLE (dimension text, name text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 'service', NULL::text
  UNION ALL
  SELECT DISTINCT 'service', s.service FROM unnest(b.services) AS s(service)
  UNION ALL
  SELECT 'agent', b.agent WHERE b.status IN ('failed', 'timed_out', 'cancelled')
  UNION ALL
  SELECT 'action', b.action WHERE b.status IN ('failed', 'timed_out', 'cancelled')
  UNION ALL
  SELECT DISTINCT 'intent', b.action || '_' || s.service FROM unnest(b.services) AS s(service) WHERE b.wall_ms IS NOT NULL
$$;

-- As in 002_ledger_totals.sql, over the new dimensions: a row counts in each of its series
-- (ledger_row_series), each kind adding its amount (1 for a count, milliseconds for a duration).
CREATE OR REPLACE FUNCTION ledger_running_totals_add(batch ledger_counted_row[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET jit = off AS $$
BEGIN
  INSERT INTO ledger_count_series (dimension, name)
  SELECT DISTINCT k.dimension, k.name
  FROM unnest(batch) AS b CROSS JOIN LATERAL ledger_row_series(b) AS k
  WHERE NOT EXISTS (SELECT 1 FROM ledger_count_series c WHERE c.dimension = k.dimension AND c.name IS NOT DISTINCT FROM k.name);

  WITH named AS (
    SELECT c.series_id, date_trunc('hour', b.created_at, 'UTC') AS hour, v.kind, v.name, sum(v.n) AS n
    FROM unnest(batch) AS b
    CROSS JOIN LATERAL ledger_row_series(b) AS k
    JOIN ledger_count_series c ON c.dimension = k.dimension AND c.name IS NOT DISTINCT FROM k.name
    CROSS JOIN LATERAL (VALUES
      ('status', CASE WHEN k.dimension = 'service' THEN b.status END, 1::bigint),
      ('failed', CASE WHEN b.status IN ('failed', 'timed_out', 'cancelled') AND k.dimension <> 'intent' THEN b.failure_class END, 1),
      ('queued', CASE WHEN b.status = 'queued' AND k.dimension = 'service' AND k.name IS NOT NULL THEN b.action END, 1),
      ('duration', CASE WHEN k.dimension = 'intent' THEN 'runs' END, 1),
      ('duration', CASE WHEN k.dimension = 'intent' THEN 'actual_ms' END, b.wall_ms),
      ('duration', CASE WHEN k.dimension = 'intent' AND b.estimated_ms IS NOT NULL THEN 'estimated' END, 1),
      ('duration', CASE WHEN k.dimension = 'intent' AND b.estimated_ms IS NOT NULL THEN 'estimated_ms' END, b.estimated_ms),
      ('duration', CASE WHEN k.dimension = 'intent' AND b.estimated_ms IS NOT NULL THEN 'estimated_actual_ms' END, b.wall_ms),
      ('duration', CASE WHEN k.dimension = 'intent' AND b.estimated_ms IS NOT NULL THEN 'abs_error_ms' END, abs(b.wall_ms - b.estimated_ms)),
      ('duration', CASE WHEN k.dimension = 'intent' AND b.wall_ms > b.estimated_ms THEN 'longer' END, 1),
      ('duration', CASE WHEN k.dimension = 'intent' AND b.wall_ms < b.estimated_ms THEN 'shorter' END, 1)
    ) AS v(kind, name, n)
    WHERE v.name IS NOT NULL
    GROUP BY 1, 2, 3, 4
  ),
  per_hour AS (
    SELECT series_id, hour,
           coalesce(jsonb_object_agg(name, n) FILTER (WHERE kind = 'status'), '{}') AS by_status,
           coalesce(jsonb_object_agg(name, n) FILTER (WHERE kind = 'failed'), '{}') AS failed_by_class,
           coalesce(jsonb_object_agg(name, n) FILTER (WHERE kind = 'queued'), '{}') AS queued_by_action,
           coalesce(jsonb_object_agg(name, n) FILTER (WHERE kind = 'duration'), '{}') AS durations
    FROM named
    GROUP BY 1, 2
  ),
  added AS (
    SELECT series_id, hour,
           ledger_counts_sum(by_status) OVER running AS by_status,
           ledger_counts_sum(failed_by_class) OVER running AS failed_by_class,
           ledger_counts_sum(queued_by_action) OVER running AS queued_by_action,
           ledger_counts_sum(durations) OVER running AS durations
    FROM per_hour
    WINDOW running AS (PARTITION BY series_id ORDER BY hour)
  ),
  later AS (
    SELECT r.series_id, r.hour, a.by_status, a.failed_by_class, a.queued_by_action, a.durations
    FROM (SELECT series_id, min(hour) AS first_hour FROM per_hour GROUP BY series_id) AS f
    CROSS JOIN LATERAL (
      SELECT r.series_id, r.hour FROM ledger_running_totals r
      WHERE r.series_id = f.series_id AND r.hour > f.first_hour
      OFFSET 0
    ) AS r
    CROSS JOIN LATERAL (
      SELECT a.by_status, a.failed_by_class, a.queued_by_action, a.durations
      FROM added a
      WHERE a.series_id = r.series_id AND a.hour < r.hour
      ORDER BY a.hour DESC
      LIMIT 1
    ) AS a
    WHERE NOT EXISTS (SELECT 1 FROM per_hour p WHERE p.series_id = r.series_id AND p.hour = r.hour)
  ),
  moved AS (
    UPDATE ledger_running_totals r SET
      by_status = ledger_counts_merge(r.by_status, l.by_status),
      failed_by_class = ledger_counts_merge(r.failed_by_class, l.failed_by_class),
      queued_by_action = ledger_counts_merge(r.queued_by_action, l.queued_by_action),
      durations = ledger_counts_merge(r.durations, l.durations)
    FROM later l
    WHERE r.series_id = l.series_id AND r.hour = l.hour
  )
  INSERT INTO ledger_running_totals AS r (series_id, hour, by_status, failed_by_class, queued_by_action, durations)
  SELECT a.series_id, a.hour,
         ledger_counts_merge(base.by_status, a.by_status),
         ledger_counts_merge(base.failed_by_class, a.failed_by_class),
         ledger_counts_merge(base.queued_by_action, a.queued_by_action),
         ledger_counts_merge(base.durations, a.durations)
  FROM added a
  LEFT JOIN LATERAL (
    SELECT p.by_status, p.failed_by_class, p.queued_by_action, p.durations
    FROM ledger_running_totals p
    WHERE p.series_id = a.series_id AND p.hour <= a.hour
    ORDER BY p.hour DESC
    LIMIT 1
  ) AS base ON true
  ON CONFLICT (series_id, hour) DO UPDATE SET
    by_status = EXCLUDED.by_status,
    failed_by_class = EXCLUDED.failed_by_class,
    queued_by_action = EXCLUDED.queued_by_action,
    durations = EXCLUDED.durations;
END
$$;

CREATE OR REPLACE FUNCTION ledger_knows_services(services text[]) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN NOT EXISTS (
    SELECT 1 FROM unnest(services) AS s(service)
    WHERE NOT EXISTS (SELECT 1 FROM ledger_count_series c WHERE c.dimension = 'service' AND c.name = s.service)
      AND NOT EXISTS (SELECT 1 FROM ledger_uncounted_rows() u WHERE s.service = ANY (u.services)));
END
$$;

-- The totals so far lack the new dimensions: count the ledger again, in batches of 50,000 rows
-- (one array of a million rows would hold them all in memory at once). Derived data: the ledger
-- itself is not touched.
DO $$
DECLARE
  counted constant bigint := (SELECT counted_through FROM ledger_totals_progress);
  low bigint := 0;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('opsledger.ledger_chain'));
  DELETE FROM ledger_running_totals;
  WHILE low < counted LOOP
    PERFORM ledger_running_totals_add(ARRAY(
      SELECT ROW(t.status, t.action, t.services_touched, t.failure_class, t.created_at, t.agent,
                 ledger_run_ms(t.status, t.resources_used, 'wallTimeS'),
                 ledger_run_ms(t.status, t.resources_used, 'estimatedDurationS'))::ledger_counted_row
        FROM tasks t WHERE t.chain_seq > low AND t.chain_seq <= least(low + 50000, counted)));
    low := low + 50000;
  END LOOP;
END
$$;

-- A split of narrowed failures (kuma's failures by agent) crosses two dimensions, which the totals
-- do not hold: it counts the range's failures one by one. This index holds every column it reads,
-- so that is an index-only scan of the failures alone (about 5 ms for a week at 1M rows).
CREATE INDEX tasks_failures_breakdown_idx ON tasks (created_at)
  INCLUDE (failure_class, agent, action, services_touched)
  WHERE status IN ('failed', 'timed_out', 'cancelled');
