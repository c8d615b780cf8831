-- What an append costs beyond a plain INSERT. Measured with pgbench, one writer, on 1,000,000
-- rows (2 cores, synchronous_commit off so that the CPU shows): a plain insert into a twin table
-- without triggers about 0.25 ms, the ledger's append about 1.0 ms, of which about 0.55 ms were
-- the running totals' statement trigger and 0.07 ms planning ledger_row_hash() again on every
-- append. After this file: about 0.35 ms.

-- ledger_row_hash() reads STABLE functions (jsonb_build_array, extract over timestamptz), so it
-- is STABLE; declared IMMUTABLE it could not be inlined and went through the SQL-function
-- executor, which plans its query again in every transaction. Inlined, the append trigger's
-- expression is planned once per session. The bytes it hashes do not change.
ALTER FUNCTION ledger_row_hash(tasks, text) STABLE;

-- The running totals of sql/004 stop being written by every append. They are brought up to date
-- in batches instead: ledger_totals_progress records the newest chain_seq they count, and the
-- append that takes every 256th chain_seq first counts the rows before it. The audit queries count
-- the rows after that mark one by one, like the partial hours at the ends of a range (at most a
-- few hundred rows, through the chain_seq index), so their answers stay exact.
-- Appends wait until this file commits, so none is counted twice or missed by the switch below.
LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;

-- A service is a name. The totals count a row once per service it touches, and a NULL among them
-- would be taken for the whole-ledger series (and makes counting fail); the API never sends one.
ALTER TABLE tasks ADD CONSTRAINT tasks_services_named
  CHECK (array_position(services_touched, NULL) IS NULL AND '' <> ALL (services_touched));

CREATE TABLE ledger_totals_progress (
  only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  counted_through bigint  NOT NULL CHECK (counted_through >= 0)
);

COMMENT ON TABLE ledger_totals_progress IS
  'The newest chain_seq counted in ledger_running_totals; rows after it are counted by the audit queries themselves.';

-- The rows the running totals do not count yet. A function, so that the planner of an audit query
-- takes its row count from ROWS (the catch-up below keeps it at 256 at most) rather than guessing a
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
-- The append trigger runs as the role that appends.
GRANT EXECUTE ON FUNCTION ledger_totals_catch_up(), ledger_uncounted_rows() TO opsledger_app;
GRANT SELECT ON ledger_totals_progress TO opsledger_app;

-- The chain trigger of sql/001, plus the catch-up. In a BEFORE trigger the row itself is not in
-- the table yet, so the catch-up counts the rows up to the one before it.
CREATE OR REPLACE FUNCTION tasks_chain_append() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  head record;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('opsledger.ledger_chain'));
  IF EXISTS (SELECT 1 FROM tasks WHERE task_id = NEW.task_id AND seq = NEW.seq) THEN
    RETURN NULL;
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

-- The totals count every row so far: sql/004's trigger kept them current until now.
DROP TRIGGER tasks_count_rows ON tasks;
DROP FUNCTION tasks_count_rows();
INSERT INTO ledger_totals_progress (counted_through) SELECT coalesce(max(chain_seq), 0) FROM tasks;
