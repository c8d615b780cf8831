-- The audit ledger: one immutable row per decision or outcome of a task.
-- Rows are hash-chained in insertion order (chain_seq) so that an edit that bypasses the
-- triggers below is detected by verification (003_ledger_guard.sql).

CREATE TABLE tasks (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id          text        NOT NULL CHECK (task_id <> ''),
  run_id           text,
  seq              integer     NOT NULL CHECK (seq >= 1),
  status           text        NOT NULL CHECK (status IN (
                     'queued', 'paused', 'resumed', 'dispatched',
                     'succeeded', 'failed', 'cancelled', 'timed_out')),
  action           text        NOT NULL CHECK (action <> ''),
  services_touched text[]      NOT NULL CHECK (cardinality(services_touched) >= 1),
  agent            text,
  actor            text        NOT NULL,
  plan             jsonb,
  outcome          jsonb,
  resources_used   jsonb,
  failure          jsonb,
  failure_class    text        CHECK (failure_class IN (
                     'resource_constraint', 'application_error', 'infrastructure',
                     'timeout', 'cancelled')),
  -- Annotation only: the one column (with updated_at) that may change after insert.
  suggestions      jsonb,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL,
  chain_seq        bigint      NOT NULL,
  prev_hash        text        NOT NULL,
  row_hash         text        NOT NULL,
  -- A row is a step of one run: a second run of a task (after `temporal workflow reset`, or a
  -- resubmission once Temporal's retention dropped the first) is recorded beside the first,
  -- never dropped as a retry of it. NULLS NOT DISTINCT: rows without a run id, which only a
  -- hand-written insert makes, stay one per (task_id, seq).
  CONSTRAINT tasks_task_run_seq_key UNIQUE NULLS NOT DISTINCT (task_id, run_id, seq),
  CONSTRAINT tasks_chain_seq_key UNIQUE (chain_seq),
  -- A service is a name. The running totals count a row once per service it touches, and a NULL
  -- among them would be taken for the whole-ledger series (and makes counting fail).
  CONSTRAINT tasks_services_named
    CHECK (array_position(services_touched, NULL) IS NULL AND '' <> ALL (services_touched))
);

COMMENT ON TABLE tasks IS 'Append-only audit ledger of opsledger; rows are hash-chained by chain_seq.';

-- The canonical bytes of a row: a JSON array of the core fields, time as epoch microseconds
-- (timestamp text would depend on the session time zone) and jsonb in its own stable text form.
-- STABLE, because jsonb_build_array() and extract() over timestamptz are: declared IMMUTABLE it
-- could not be inlined, and the SQL-function executor planned its query again in every
-- transaction (0.07 ms of each append). Inlined, the append trigger plans it once per session.
CREATE FUNCTION ledger_row_hash(t tasks, prev_hash text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    t.chain_seq, t.task_id, t.run_id, t.seq, t.status, t.action, t.services_touched,
    t.agent, t.actor, t.plan, t.outcome, t.resources_used, t.failure, t.failure_class,
    (extract(epoch FROM t.created_at) * 1000000)::bigint,
    prev_hash
  )::text, 'UTF8')), 'hex')
$$;

-- Appends are serialised by one transaction-scoped advisory lock, held to commit, so the chain
-- never forks and chain_seq order is commit order. A retried append of a (task_id, run_id, seq)
-- finds the same row already there and is skipped, so recording is idempotent; a different row
-- under that key is refused (unique_violation on tasks_task_run_seq_key), because answering the
-- recorded row instead would lose what the caller meant to record without anyone noticing.
-- Every 256th append also brings the running totals up to date (ledger_totals_catch_up(),
-- 002_ledger_totals.sql): in a BEFORE trigger the row itself is not in the table yet, so the
-- catch-up counts the rows up to the one before it.
CREATE FUNCTION tasks_chain_append() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  head record;
  recorded tasks;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('opsledger.ledger_chain'));
  SELECT * INTO recorded FROM tasks
   WHERE task_id = NEW.task_id AND run_id IS NOT DISTINCT FROM NEW.run_id AND seq = NEW.seq;
  IF FOUND THEN
    -- The columns an append writes; the rest are this trigger's, or annotation.
    IF (recorded.status, recorded.action, recorded.services_touched, recorded.agent, recorded.actor,
        recorded.plan, recorded.outcome, recorded.resources_used, recorded.failure, recorded.failure_class)
       IS NOT DISTINCT FROM
       (NEW.status, NEW.action, NEW.services_touched, NEW.agent, NEW.actor,
        NEW.plan, NEW.outcome, NEW.resources_used, NEW.failure, NEW.failure_class) THEN
      RETURN NULL;
    END IF;
    RAISE EXCEPTION 'tasks is an append-only ledger: task %, run %, seq % is already recorded (chain_seq %, status %) with other content',
      NEW.task_id, coalesce(NEW.run_id, '(none)'), NEW.seq, recorded.chain_seq, recorded.status
      USING ERRCODE = 'unique_violation', CONSTRAINT = 'tasks_task_run_seq_key';
  END IF;
  SELECT chain_seq, row_hash INTO head FROM tasks ORDER BY chain_seq DESC LIMIT 1;
  NEW.created_at := coalesce(NEW.created_at, clock_timestamp());
  NEW.updated_at := NEW.created_at;
  NEW.suggestions := NULL;
  NEW.chain_seq := coalesce(head.chain_seq, 0) + 1;
  NEW.prev_hash := coalesce(head.row_hash, repeat('0', 64));
  NEW.row_hash := ledger_row_hash(NEW, NEW.prev_hash);
  IF NEW.chain_seq % 256 = 0 THEN
    -- Derived data never holds up the ledger: should counting fail, the append goes on, the mark
    -- stays (the audit queries count the rows after it themselves, only more of them) and the
    -- next 256th append tries again. WHEN OTHERS does not catch a cancelled statement.
    BEGIN
      PERFORM ledger_totals_catch_up();
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'ledger running totals not brought up to date: %', SQLERRM
        USING HINT = 'Audit answers stay exact; SELECT ledger_totals_catch_up() as the owner shows the error.';
    END;
  END IF;
  RETURN NEW;
END
$$;

-- The only permitted UPDATE annotates suggestions: every hashed field must stay as it was.
CREATE FUNCTION tasks_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF NEW.id = OLD.id
       AND NEW.chain_seq = OLD.chain_seq
       AND NEW.prev_hash = OLD.prev_hash
       AND NEW.row_hash = OLD.row_hash
       AND ledger_row_hash(NEW, NEW.prev_hash) = OLD.row_hash THEN
      NEW.updated_at := clock_timestamp();
      RETURN NEW;
    END IF;
    RAISE EXCEPTION 'tasks is an append-only ledger: UPDATE of core columns is not allowed (only suggestions may be annotated)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RAISE EXCEPTION 'tasks is an append-only ledger: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER tasks_chain_append BEFORE INSERT ON tasks
  FOR EACH ROW EXECUTE FUNCTION tasks_chain_append();
CREATE TRIGGER tasks_reject_update_delete BEFORE UPDATE OR DELETE ON tasks
  FOR EACH ROW EXECUTE FUNCTION tasks_reject_change();
CREATE TRIGGER tasks_reject_truncate BEFORE TRUNCATE ON tasks
  FOR EACH STATEMENT EXECUTE FUNCTION tasks_reject_change();

-- ALWAYS: fire under session_replication_role = replica too, which skips ordinary triggers.
ALTER TABLE tasks ENABLE ALWAYS TRIGGER tasks_chain_append;
ALTER TABLE tasks ENABLE ALWAYS TRIGGER tasks_reject_update_delete;
ALTER TABLE tasks ENABLE ALWAYS TRIGGER tasks_reject_truncate;

-- Indexes, each chosen by the plan of a query that serves an endpoint (docs/ledger.md).
CREATE INDEX tasks_created_at_id_idx ON tasks (created_at, id);
CREATE INDEX tasks_status_created_at_idx ON tasks (status, created_at);
CREATE INDEX tasks_services_touched_idx ON tasks USING gin (services_touched);
-- /audit/failures walks this one newest first. A failure is a final row that did not succeed
-- (docs/failure-classes.md). status = 'failed' (or any subset of these statuses, written as
-- literals) implies the predicate, so the status filter of /audit uses it too.
CREATE INDEX tasks_failures_created_at_id_idx ON tasks (created_at, id)
  WHERE status IN ('failed', 'timed_out', 'cancelled');
-- A failure class filter (on /audit/failures or /audit) starts at its class, newest first: walking
-- all failures for a class that is rare or absent read the whole partial index (28.7 ms at p95 on
-- 1M rows). failure_class = $1 implies the predicate, whatever the value.
CREATE INDEX tasks_failure_class_created_at_id_idx ON tasks (failure_class, created_at, id)
  WHERE failure_class IS NOT NULL;
-- The intent filter (action + service): walk one action newest first and keep the rows of the
-- service, instead of decoding the services GIN bitmap (~135k rows) for a 50-row page.
CREATE INDEX tasks_action_created_at_id_idx ON tasks (action, created_at, id);
-- failure_class is set only on final rows: without this the planner misjudged status with
-- failure_class together (62 rows expected, 2,103 found) and picked the GIN index for
-- "failures of one class on one service" (43-69 ms instead of 3-6 ms).
CREATE STATISTICS tasks_status_failure_class (mcv, dependencies) ON status, failure_class FROM tasks;
