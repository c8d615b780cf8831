-- Running totals of the ledger per hour, so that the aggregate audit endpoints (failures summary,
-- by-service, intents) answer any range in near-constant time instead of scanning its rows.
--
-- Measured on 1,000,000 rows over 90 days, 10 services (about 460 rows an hour), PostgreSQL 15 on
-- 2 cores: counting a week per (service, status) from tasks takes about 60 ms; summing plain
-- hourly counts still reads 12-13k rollup rows (about 6 ms), because an hour holds nearly every
-- (service, status) pair. A running total ("rows so far, through the end of this hour") turns the
-- whole hours of any range into two index probes per series: count[H1, H2) = total before H2 -
-- total before H1. The partial hours at both ends of a range are counted exactly from tasks
-- through tasks_created_at_id_idx (at most two hours of rows), so answers stay exact
-- (src/ledger/auditQueries.ts); by-service over a week then takes about 2 ms, over 90 days the same.
--
-- The totals are not written by every append: counting in a trigger on every INSERT cost about
-- 0.55 ms of a 1.0 ms append (a plain insert: 0.25 ms). ledger_totals_progress records the newest
-- chain_seq they count, and the append that takes every 256th chain_seq first counts the rows
-- before it (tasks_chain_append, 001_ledger_chain.sql). The audit queries count the rows after
-- that mark one by one, like the partial hours at the ends of a range (at most a few hundred rows,
-- through the chain_seq index), so their answers stay exact.
--
-- These tables are derived data, written only by ledger_totals_catch_up(); the ledger stays
-- append-only and remains the record.

-- What is counted: every ledger row once (service NULL), and each service separately (each row
-- that touches it, once even if a row lists it twice). One row per series; a handful in all.
CREATE TABLE ledger_count_series (
  series_id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  service   text,
  CONSTRAINT ledger_count_series_service_key UNIQUE NULLS NOT DISTINCT (service)
);

COMMENT ON TABLE ledger_count_series IS
  'Series of ledger_running_totals: service NULL counts every ledger row once, a service the rows that touch it.';

INSERT INTO ledger_count_series (service) VALUES (NULL);

-- One row per series and UTC hour in which the series got a row; each map holds, for the rows of
-- the series created before the end of that hour, a running total per name:
--   by_status        status -> rows                      ({"queued": 120, "failed": 7, ...})
--   failed_by_class  failure_class -> failures           ({"timeout": 3, ...}; failed, timed_out
--                    and cancelled rows, as the failure endpoints count them)
--   queued_by_action action -> queued rows, i.e. tasks   ({"deploy": 40, ...}; service series only,
--                    so with the service they are the inferred intents, e.g. deploy_kuma; a run
--                    begins with its queued row, so a task submitted again counts once a run)
-- The primary key serves the one lookup the queries make: the newest row of a series before an
-- hour (an index scan backward, LIMIT 1). No other index is needed.
CREATE TABLE ledger_running_totals (
  series_id        integer     NOT NULL REFERENCES ledger_count_series,
  hour             timestamptz NOT NULL,
  by_status        jsonb       NOT NULL,
  failed_by_class  jsonb       NOT NULL,
  queued_by_action jsonb       NOT NULL,
  PRIMARY KEY (series_id, hour)
);

COMMENT ON TABLE ledger_running_totals IS
  'Derived from tasks: running totals through the end of each UTC hour, per series; failed_by_class counts failed, timed_out and cancelled rows.';

CREATE TABLE ledger_totals_progress (
  only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  counted_through bigint  NOT NULL CHECK (counted_through >= 0)
);

COMMENT ON TABLE ledger_totals_progress IS
  'The newest chain_seq counted in ledger_running_totals; rows after it are counted by the audit queries themselves.';

-- Nothing counted yet: should the ledger already hold rows, the audit queries count them and the
-- next catch-up adds them to the totals.
INSERT INTO ledger_totals_progress (counted_through) VALUES (0);

-- Adds two maps of counts name by name.
CREATE FUNCTION ledger_counts_merge(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  merged jsonb := coalesce(a, '{}');
  entry record;
BEGIN
  FOR entry IN SELECT key, value FROM jsonb_each_text(coalesce(b, '{}')) LOOP
    merged := merged || jsonb_build_object(entry.key, coalesce((merged ->> entry.key)::bigint, 0) + entry.value::bigint);
  END LOOP;
  RETURN merged;
END
$$;

CREATE AGGREGATE ledger_counts_sum(jsonb) (SFUNC = ledger_counts_merge, STYPE = jsonb, INITCOND = '{}');

-- What of a ledger row is counted.
CREATE TYPE ledger_counted_row AS (
  status text, action text, services text[], failure_class text, created_at timestamptz
);

-- Adds a batch of ledger rows to the running totals in one pass: the batch is counted per series
-- and hour first, so that each (series, hour) is updated once rather than once per row. Once per
-- row, a bulk load in one transaction turns quadratic (each update of the same hour's totals leaves
-- a row version the next update must step over): 100,000 rows ran for over 11 minutes. The batch's
-- own hours get the totals before them plus the batch's running counts; existing later hours of a
-- series (back-dated rows; appends normally arrive in time order) move by the batch's counts too.
-- A generic plan: the statement is the same on every call, and planning it costs more than running
-- it for a small batch.
CREATE FUNCTION ledger_running_totals_add(batch ledger_counted_row[]) RETURNS void
-- jit off: the per-series lookups below are cheap, but their estimated cost passes
-- jit_above_cost and compiling took ~56 ms on every call.
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
    -- OFFSET 0 keeps this a primary-key probe per series: as a join, the generic plan
    -- scanned every running total on every call (4.7 ms at 90 days, and growing).
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
  -- The totals through this hour before the batch: the hour's own row, or the newest before it.
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

REVOKE EXECUTE ON FUNCTION ledger_running_totals_add(ledger_counted_row[]) FROM PUBLIC;

-- The rows the running totals do not count yet. A function, so that the planner of an audit query
-- takes its row count from ROWS (the catch-up keeps it at 256 at most) rather than guessing a
-- third of the ledger for "chain_seq > a value read at run time", which led it to bitmap-scan a
-- range's whole failure index (7 ms instead of 0.3). In here the rows are a range of chain_seq
-- between two bounds: with the lower bound only, a plan cached before the table had statistics (a
-- bulk load into a new ledger) scanned the whole table on every catch-up; a range is estimated
-- small in any plan, so the chain_seq index is walked. STABLE: it reads the snapshot of the query
-- that calls it, the same as the totals that query reads.
CREATE FUNCTION ledger_uncounted_rows() RETURNS SETOF ledger_counted_row
LANGUAGE plpgsql STABLE ROWS 256 AS $$
DECLARE
  counted constant bigint := (SELECT counted_through FROM ledger_totals_progress);
  newest constant bigint := (SELECT max(chain_seq) FROM tasks);
BEGIN
  RETURN QUERY
    SELECT t.status, t.action, t.services_touched, t.failure_class, t.created_at
      FROM tasks t WHERE t.chain_seq > counted AND t.chain_seq <= newest;
END
$$;

-- Counts every ledger row after the mark and moves the mark to the chain's head; returns how many
-- rows it counted. Under the chain's lock, which appends hold to commit: every row below the head
-- is committed (or its own transaction's), so the rows after the mark are exactly the uncounted
-- ones. Anyone may call it (an operator before a report, say); the append trigger calls it every
-- 256 rows. SECURITY DEFINER: the application role may not write the totals itself.
CREATE FUNCTION ledger_totals_catch_up() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  counted bigint;
  newest bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('opsledger.ledger_chain'));
  SELECT counted_through INTO counted FROM ledger_totals_progress;
  SELECT max(chain_seq) INTO newest FROM tasks;
  IF newest IS NULL OR newest <= counted THEN
    RETURN 0;
  END IF;
  PERFORM ledger_running_totals_add(ARRAY(SELECT u FROM ledger_uncounted_rows() u));
  UPDATE ledger_totals_progress SET counted_through = newest;
  RETURN newest - counted;
END
$$;

REVOKE EXECUTE ON FUNCTION ledger_totals_catch_up() FROM PUBLIC;

-- A filter on a service the ledger has never seen walked the whole time index looking for the page
-- it expected to find: 0.5-0.7 s for "service=nowhere, past 90 days" on 1,000,000 rows. The planner
-- cannot know that a name is absent (it guesses about half the rarest service's share); the running
-- totals can: a service has its series once one of its rows is counted, and the rows not counted
-- yet are few. The audit queries add this as a condition that reads no column of the row, which
-- PostgreSQL evaluates once, before the scan. PL/pgSQL keeps its plan for the session; as an SQL
-- function it was planned on every call, 0.23 ms of a 0.44 ms query.
CREATE FUNCTION ledger_knows_services(services text[]) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN NOT EXISTS (
    SELECT 1 FROM unnest(services) AS s(service)
    WHERE NOT EXISTS (SELECT 1 FROM ledger_count_series c WHERE c.service = s.service)
      AND NOT EXISTS (SELECT 1 FROM ledger_uncounted_rows() u WHERE s.service = ANY (u.services)));
END
$$;
