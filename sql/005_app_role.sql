-- The application connects (or SET ROLEs) as opsledger_app: it may read the ledger, append to it
-- and annotate suggestions, nothing more. It cannot choose created_at or the chain columns, nor
-- write the running totals (ledger_totals_catch_up() does, as the owner). Its grants on the
-- objects of the files before this one are all here, so what the application may do reads in one
-- place.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'opsledger_app') THEN
    CREATE ROLE opsledger_app NOLOGIN;
  END IF;
END
$$;

GRANT opsledger_app TO CURRENT_USER;
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
