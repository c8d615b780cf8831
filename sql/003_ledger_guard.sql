-- Tamper evidence: verification in SQL, for the API and the CLI, and event triggers that refuse
-- DDL which would weaken the ledger (switch off or drop its triggers, replace its functions, drop
-- or alter the table) unless it runs inside a migration: the migration runner sets
-- opsledger.migrating = on for each file's transaction. A file applied with psql needs the same,
-- e.g. PGOPTIONS='-c opsledger.migrating=on' psql -1 -f sql/NNN_file.sql.
--
-- The setting is a placeholder any session may set, so it opens the guard only for the role
-- that migrated (the owner of ledger_ddl_guard(), and so of the ledger) or a superuser: a role
-- that may DDL the ledger without owning it, such as the owner of its schema (who may drop
-- tables in it) or one granted TRIGGER on tasks, stays refused with the setting on.
--
-- What this does not stop: the owner can set opsledger.migrating by hand, and a superuser can
-- switch the guard off (`ALTER EVENT TRIGGER ... DISABLE`, or drop its function with CASCADE;
-- event triggers do not fire for commands on event triggers). The guard keeps mistakes and
-- careless scripts away from the ledger; the hash chain (ledger_verify) and checkpoints kept
-- outside the database are what detect the rest. The application's login is neither owner nor
-- superuser (sql/005_app_role.sql), so none of this is open to it.

-- Verification runs in SQL so that it hashes exactly the bytes the append trigger hashed.
-- The first row whose hash, link to its predecessor or sequence is wrong, or no row: what a
-- verification checks, stated plainly, row by row in chain order. ledger_verify() below answers
-- the same faster and is what the API and CLI call; this one is the reference that the tests and
-- the ledger bench hold it to.
CREATE FUNCTION ledger_first_broken_row()
RETURNS TABLE (chain_seq bigint, task_id text, seq integer, reason text)
LANGUAGE sql STABLE AS $$
  WITH walk AS (
    SELECT t.chain_seq, t.task_id, t.seq, t.prev_hash, t.row_hash,
           ledger_row_hash(t, t.prev_hash) AS recomputed,
           lag(t.row_hash) OVER w AS previous_row_hash,
           lag(t.chain_seq) OVER w AS previous_chain_seq
    FROM tasks t
    WINDOW w AS (ORDER BY t.chain_seq)
  )
  SELECT w.chain_seq, w.task_id, w.seq,
         CASE
           WHEN w.chain_seq <> coalesce(w.previous_chain_seq, 0) + 1
             THEN 'row(s) missing before chain_seq ' || w.chain_seq
           WHEN w.prev_hash <> coalesce(w.previous_row_hash, repeat('0', 64))
             THEN 'prev_hash does not match the previous row''s hash'
           ELSE 'row_hash does not match the row''s content'
         END
  FROM walk w
  WHERE w.chain_seq <> coalesce(w.previous_chain_seq, 0) + 1
     OR w.prev_hash <> coalesce(w.previous_row_hash, repeat('0', 64))
     OR w.recomputed <> w.row_hash
  ORDER BY w.chain_seq
  LIMIT 1
$$;

-- The bytes ledger_row_hash() hashes, rendered straight from the columns. jsonb_build_array()
-- re-encodes every jsonb value before printing it; this renders each value once and costs about
-- two thirds as much, which is most of a verification. A match proves the row as well as
-- ledger_row_hash() would: the text is a JSON rendering of the row's current values and equals the
-- bytes hashed when it was appended. ledger_verify() judges any row that does not match with
-- ledger_row_hash() itself, so should the two renderings ever differ, verification gets slower,
-- never wrong.
CREATE FUNCTION ledger_row_hash_fast(t tasks) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT encode(sha256(convert_to(concat(
    '[', t.chain_seq, ', ', to_json(t.task_id), ', ', coalesce(to_json(t.run_id)::text, 'null'),
    ', ', t.seq, ', ', to_json(t.status), ', ', to_json(t.action), ', ', to_jsonb(t.services_touched),
    ', ', coalesce(to_json(t.agent)::text, 'null'), ', ', to_json(t.actor),
    ', ', coalesce(t.plan::text, 'null'), ', ', coalesce(t.outcome::text, 'null'),
    ', ', coalesce(t.resources_used::text, 'null'), ', ', coalesce(t.failure::text, 'null'),
    ', ', coalesce(to_json(t.failure_class)::text, 'null'),
    ', ', (extract(epoch FROM t.created_at) * 1000000)::bigint, ', ', to_json(t.prev_hash), ']'), 'UTF8')), 'hex')
$$;

-- One call answers everything a verification reports, from one snapshot: how many rows were
-- checked, the head of the chain, and the first broken row with the same reasons as
-- ledger_first_broken_row(). It finds the same row, only faster. Recomputing every row hash
-- (jsonb to text, then SHA-256) is nearly all of the cost, so that part uses
-- ledger_row_hash_fast() in one aggregate over a plain scan, which PostgreSQL spreads over
-- parallel workers; only the narrow link columns are walked in chain order. PL/pgSQL for
-- RETURN QUERY alone: it runs its query with parallel workers, where a set-returning SQL
-- function or a SELECT INTO runs it in one process.
CREATE FUNCTION ledger_verify()
RETURNS TABLE (rows_checked bigint, head_chain_seq bigint, head_row_hash text,
               broken_chain_seq bigint, broken_task_id text, broken_seq integer, broken_reason text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY
  WITH content AS (
    -- count(*) beside min() also keeps the planner from turning a lone min() into a serial
    -- walk of the chain_seq index.
    SELECT count(*) AS rows_checked,
           min(t.chain_seq) FILTER (WHERE ledger_row_hash_fast(t) IS DISTINCT FROM t.row_hash
                                      AND ledger_row_hash(t, t.prev_hash) IS DISTINCT FROM t.row_hash) AS first_bad
      FROM tasks t
  ), link AS (
    SELECT w.chain_seq,
           CASE WHEN w.chain_seq <> coalesce(w.previous_chain_seq, 0) + 1
                THEN 'row(s) missing before chain_seq ' || w.chain_seq
                ELSE 'prev_hash does not match the previous row''s hash'
           END AS reason
      FROM (SELECT t.chain_seq, t.prev_hash,
                   lag(t.row_hash) OVER w AS previous_row_hash,
                   lag(t.chain_seq) OVER w AS previous_chain_seq
              FROM tasks t
            WINDOW w AS (ORDER BY t.chain_seq)) w
     WHERE w.chain_seq <> coalesce(w.previous_chain_seq, 0) + 1
        OR w.prev_hash <> coalesce(w.previous_row_hash, repeat('0', 64))
     ORDER BY w.chain_seq
     LIMIT 1
  ), head AS (
    SELECT t.chain_seq, t.row_hash FROM tasks t ORDER BY t.chain_seq DESC LIMIT 1
  ), broken AS (
    -- On one row a broken link is reported before its content, as ledger_first_broken_row() does.
    SELECT CASE WHEN link.chain_seq <= coalesce(content.first_bad, link.chain_seq) THEN link.chain_seq
                ELSE content.first_bad
           END AS chain_seq,
           CASE WHEN link.chain_seq <= coalesce(content.first_bad, link.chain_seq) THEN link.reason
                WHEN content.first_bad IS NOT NULL THEN 'row_hash does not match the row''s content'
           END AS reason
      FROM content LEFT JOIN link ON true
  )
  SELECT content.rows_checked, head.chain_seq, head.row_hash, broken.chain_seq, b.task_id, b.seq, broken.reason
    FROM content
    CROSS JOIN broken
    LEFT JOIN head ON true
    LEFT JOIN LATERAL (SELECT t.task_id, t.seq FROM tasks t WHERE t.chain_seq = broken.chain_seq LIMIT 1) b ON true;
END
$$;

-- One function serves both events. ddl_command_end names the changed object by oid and shows
-- the catalogs as the command left them, so a rename is seen under the new name: the table is
-- also recognised by its chain trigger, a trigger by its table, and a function by what still
-- uses it (a ledger trigger, this guard's event triggers) or, in the ledger's schema, by taking
-- a ledger row. sql_drop sees dropped objects only by name, as they are gone from the catalogs
-- by then; renames are refused, so the names hold. An index on tasks is not guarded: it cannot
-- change what is stored, and CREATE INDEX CONCURRENTLY cannot run inside a migration's
-- transaction. GRANT and REVOKE are not guarded either: event triggers are not told their object.
CREATE FUNCTION ledger_ddl_guard() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  -- The functions the ledger's integrity rests on, this guard's own included.
  guarded_functions constant text[] := ARRAY[
    'tasks_chain_append', 'tasks_reject_change', 'ledger_row_hash',
    'ledger_row_hash_fast', 'ledger_first_broken_row', 'ledger_verify', 'ledger_ddl_guard'];
  ledger_schema constant text := current_schema();
  ledger_namespace constant oid := (SELECT oid FROM pg_namespace WHERE nspname = current_schema());
  ledger_tables oid[];
  offending text;
BEGIN
  -- USAGE: the privileges current_user holds now, which are what the DDL runs with.
  IF current_setting('opsledger.migrating', true) = 'on'
     AND pg_has_role(current_user,
                     (SELECT p.proowner FROM pg_proc p WHERE p.oid = 'ledger_ddl_guard()'::regprocedure),
                     'USAGE') THEN
    RETURN;
  END IF;

  IF TG_EVENT = 'sql_drop' THEN
    SELECT d.object_identity INTO offending
      FROM pg_event_trigger_dropped_objects() d
     WHERE d.address_names[1] = ledger_schema
       AND ((d.object_type IN ('table', 'table column', 'table constraint', 'trigger', 'rule', 'policy')
             AND d.address_names[2] = 'tasks')
         OR (d.object_type IN ('function', 'procedure') AND d.address_names[2] = ANY (guarded_functions)))
     LIMIT 1;
  ELSE
    ledger_tables := ARRAY(
      SELECT c.oid FROM pg_class c
       WHERE c.relnamespace = ledger_namespace AND c.relkind = 'r'
         AND (c.relname = 'tasks'
              OR EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tasks_chain_append')));
    SELECT c.object_identity INTO offending
      FROM pg_event_trigger_ddl_commands() c
     WHERE CASE c.classid
             WHEN 'pg_class'::regclass THEN c.objid = ANY (ledger_tables)
             WHEN 'pg_trigger'::regclass THEN
               EXISTS (SELECT FROM pg_trigger t WHERE t.oid = c.objid AND t.tgrelid = ANY (ledger_tables))
             WHEN 'pg_rewrite'::regclass THEN
               EXISTS (SELECT FROM pg_rewrite r WHERE r.oid = c.objid AND r.ev_class = ANY (ledger_tables))
             WHEN 'pg_policy'::regclass THEN
               EXISTS (SELECT FROM pg_policy p WHERE p.oid = c.objid AND p.polrelid = ANY (ledger_tables))
             WHEN 'pg_proc'::regclass THEN
               EXISTS (SELECT FROM pg_proc p
                        WHERE p.oid = c.objid
                          AND ((p.pronamespace = ledger_namespace
                                AND (p.proname = ANY (guarded_functions)
                                     OR EXISTS (SELECT FROM pg_class r
                                                 WHERE r.oid = ANY (ledger_tables)
                                                   AND r.reltype = ANY (p.proargtypes::oid[]))))
                               OR p.oid IN (SELECT t.tgfoid FROM pg_trigger t WHERE t.tgrelid = ANY (ledger_tables))
                               OR p.oid IN (SELECT e.evtfoid FROM pg_event_trigger e
                                             WHERE e.evtname LIKE 'ledger_ddl_guard%')))
             ELSE false
           END
     LIMIT 1;
  END IF;

  IF offending IS NOT NULL THEN
    RAISE EXCEPTION 'tasks is an append-only ledger: % on % is refused; schema changes go through `opsledger migrate`',
      TG_TAG, offending
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Add a migration file to sql/ and run `opsledger migrate` as the ledger''s owner; it sets opsledger.migrating = on for its own transaction.';
  END IF;
END
$$;

-- Pinned so that neither the session's search_path nor a temporary table named tasks can make
-- the guard look at the wrong objects: it guards the schema the ledger was created in.
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION ledger_ddl_guard() SET search_path = %I, pg_temp',
                 (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.oid = 'tasks'::regclass));
END
$$;

-- Only a superuser may create event triggers. Without one the rest of this file still applies
-- and the ledger keeps its row triggers and its hash chain; only this guard is missing.
-- Created last: from here on DDL on the ledger is refused outside a migration, and creating
-- event triggers is not DDL that event triggers see.
DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE NOTICE 'ledger DDL guard skipped: creating event triggers needs a superuser and % is not one', current_user;
    RETURN;
  END IF;
  CREATE EVENT TRIGGER ledger_ddl_guard_command ON ddl_command_end EXECUTE FUNCTION ledger_ddl_guard();
  CREATE EVENT TRIGGER ledger_ddl_guard_drop ON sql_drop EXECUTE FUNCTION ledger_ddl_guard();
END
$$;
