-- The application connects (or SET ROLEs) as opsledger_app: it may read the ledger, append to it
-- and annotate suggestions, nothing more. It cannot choose created_at or the chain columns.
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
GRANT EXECUTE ON FUNCTION ledger_first_broken_row() TO opsledger_app;
