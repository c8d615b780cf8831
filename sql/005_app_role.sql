-- The application's grants, held by opsledger_app: it may read the ledger, append to it and
-- annotate suggestions, nothing more. It cannot choose created_at or the chain columns, nor write
-- the running totals (ledger_totals_catch_up() does, as the owner). Its grants on the objects of
-- the files before this one are all here, so what the application may do reads in one place.
--
-- The application logs in as a role of its own that is a member of opsledger_app and of nothing
-- that owns the ledger, its schema or its database (`opsledger dev` and the test setup make one,
-- docker/postgres-init.sh another; src/db/appLogin.ts refuses to open the pools with any other).
-- Switching to opsledger_app at connect time is no boundary by itself: SET ROLE NONE goes back to
-- the login, which for an owner login could rewrite the ledger and recompute its hashes. The
-- owner is not made a member of opsledger_app either: nothing connects as the owner to work as
-- the application.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'opsledger_app') THEN
    CREATE ROLE opsledger_app NOLOGIN;
  END IF;
END
$$;

-- A temporary table named tasks (or any ledger table) would come first on the search path of the
-- session that made it, so its own reads, ledger_verify() and the chain trigger's look-up of the
-- head included, would see that table: a pooled connection could be left answering "verified".
-- PUBLIC holds TEMPORARY by default, and so every login with it. Nothing of opsledger uses
-- temporary tables. The schema's CREATE is PUBLIC's too on databases from before PostgreSQL 15.
DO $$
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO opsledger_app;

GRANT SELECT ON tasks TO opsledger_app;
GRANT INSERT (task_id, run_id, seq, status, action, services_touched, agent, actor,
              plan, outcome, resources_used, failure, failure_class) ON tasks TO opsledger_app;
GRANT UPDATE (suggestions, updated_at) ON tasks TO opsledger_app;

-- The append trigger runs as the role that appends, and calls the catch-up every 256 rows.
GRANT SELECT ON ledger_count_series, ledger_running_totals, ledger_totals_progress TO opsledger_app;
GRANT EXECUTE ON FUNCTION ledger_totals_catch_up(), ledger_uncounted_rows(), ledger_knows_services(text[])
  TO opsledger_app;

GRANT EXECUTE ON FUNCTION ledger_first_broken_row(), ledger_row_hash_fast(tasks), ledger_verify() TO opsledger_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON agents, reservations, pause_queue TO opsledger_app;
GRANT SELECT, UPDATE ON dispatch_control TO opsledger_app;
