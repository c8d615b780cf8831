-- A failure is a final row that did not succeed: status failed, timed_out or cancelled, each with
-- its failure class (docs/failure-classes.md). Until now the failure list, the summary by class
-- and the running totals' failed_by_class took status = 'failed' alone, so the classes `timeout`
-- and `cancelled`, which only timed_out and cancelled rows carry, were never listed or counted.

-- /audit/failures walks this one newest first. It replaces the index on status = 'failed' only:
-- status = 'failed' (or any subset of these statuses, written as literals) implies this predicate,
-- so the status filter of /audit keeps a partial index of the same size.
CREATE INDEX tasks_failures_created_at_id_idx ON tasks (created_at, id)
  WHERE status IN ('failed', 'timed_out', 'cancelled');
DROP INDEX tasks_failed_created_at_id_idx;

-- A failure class filter (on /audit/failures or /audit) starts at its class, newest first: walking
-- all failures for a class that is rare or absent read the whole partial index (28.7 ms at p95 on
-- 1M rows). failure_class = $1 implies the predicate, whatever the value.
CREATE INDEX tasks_failure_class_created_at_id_idx ON tasks (failure_class, created_at, id)
  WHERE failure_class IS NOT NULL;

-- The running totals count failures by class the same way: only the 'failed' kind changes from
-- sql/004_ledger_rollups.sql.
CREATE OR REPLACE FUNCTION ledger_running_totals_add(batch ledger_counted_row[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET jit = off AS $$
BEGIN
  INSERT INTO ledger_count_series (service)
  SELECT DISTINCT s.service
  FROM unnest(batch) AS b CROSS JOIN LATERAL unnest(b.services) AS s(service)
  WHERE NOT EXISTS (SELECT 1 FROM ledger_count_series c WHERE c.service = s.service);

  WITH named AS (
    SELECT c.series_id, date_trunc('hour', b.created_at, 'UTC') AS hour, k.kind, k.name, count(*) AS n
    FROM unnest(batch) AS b
    JOIN ledger_count_series c ON c.service IS NULL OR c.service = ANY (b.services)
    CROSS JOIN LATERAL (VALUES
      ('status', b.status),
      ('failed', CASE WHEN b.status IN ('failed', 'timed_out', 'cancelled') THEN b.failure_class END),
      ('queued', CASE WHEN b.status = 'queued' AND c.service IS NOT NULL THEN b.action END)
    ) AS k(kind, name)
    WHERE k.name IS NOT NULL
    GROUP BY 1, 2, 3, 4
  ),
  per_hour AS (
    SELECT series_id, hour,
           coalesce(jsonb_object_agg(name, n) FILTER (WHERE kind = 'status'), '{}') AS by_status,
           coalesce(jsonb_object_agg(name, n) FILTER (WHERE kind = 'failed'), '{}') AS failed_by_class,
           coalesce(jsonb_object_agg(name, n) FILTER (WHERE kind = 'queued'), '{}') AS queued_by_action
    FROM named
    GROUP BY 1, 2
  ),
  added AS (
    SELECT series_id, hour,
           ledger_counts_sum(by_status) OVER running AS by_status,
           ledger_counts_sum(failed_by_class) OVER running AS failed_by_class,
           ledger_counts_sum(queued_by_action) OVER running AS queued_by_action
    FROM per_hour
    WINDOW running AS (PARTITION BY series_id ORDER BY hour)
  ),
  later AS (
    SELECT r.series_id, r.hour, a.by_status, a.failed_by_class, a.queued_by_action
    FROM (SELECT series_id, min(hour) AS first_hour FROM per_hour GROUP BY series_id) AS f
    CROSS JOIN LATERAL (
      SELECT r.series_id, r.hour FROM ledger_running_totals r
      WHERE r.series_id = f.series_id AND r.hour > f.first_hour
      OFFSET 0
    ) AS r
    CROSS JOIN LATERAL (
      SELECT a.by_status, a.failed_by_class, a.queued_by_action
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
      queued_by_action = ledger_counts_merge(r.queued_by_action, l.queued_by_action)
    FROM later l
    WHERE r.series_id = l.series_id AND r.hour = l.hour
  )
  INSERT INTO ledger_running_totals AS r (series_id, hour, by_status, failed_by_class, queued_by_action)
  SELECT a.series_id, a.hour,
         ledger_counts_merge(base.by_status, a.by_status),
         ledger_counts_merge(base.failed_by_class, a.failed_by_class),
         ledger_counts_merge(base.queued_by_action, a.queued_by_action)
  FROM added a
  LEFT JOIN LATERAL (
    SELECT p.by_status, p.failed_by_class, p.queued_by_action
    FROM ledger_running_totals p
    WHERE p.series_id = a.series_id AND p.hour <= a.hour
    ORDER BY p.hour DESC
    LIMIT 1
  ) AS base ON true
  ON CONFLICT (series_id, hour) DO UPDATE SET
    by_status = EXCLUDED.by_status,
    failed_by_class = EXCLUDED.failed_by_class,
    queued_by_action = EXCLUDED.queued_by_action;
END
$$;

COMMENT ON TABLE ledger_running_totals IS
  'Derived from tasks: running totals through the end of each UTC hour, per series; failed_by_class counts failed, timed_out and cancelled rows.';

-- Recount from the ledger, which stays the record: appends wait meanwhile, so none is missed or
-- counted twice. About 15 s at 1,000,000 rows on 2 cores, new indexes included.
LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;
TRUNCATE ledger_running_totals;
SELECT ledger_running_totals_add(ARRAY(
  SELECT ROW(status, action, services_touched, failure_class, created_at)::ledger_counted_row FROM tasks));
