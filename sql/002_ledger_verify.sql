-- Verification runs in SQL so that it hashes exactly the bytes the append trigger hashed.
-- Returns the first row whose hash, link to its predecessor or sequence is wrong, or no row.
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
