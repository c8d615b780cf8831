import type { Db } from '../db/pool';

/** The newest row of the chain; a checkpoint records one. chain_seq is bigint, so text. */
export type ChainHead = { chainSeq: string; rowHash: string };

export type BrokenRow = { chainSeq: string; taskId: string; seq: number; reason: string };

export type ChainVerification = {
  ok: boolean;
  /** Rows checked: every row of the ledger as one snapshot saw it. */
  rows: number;
  head: ChainHead | null;
  firstBroken?: BrokenRow;
  ms: number;
};

export type CheckpointCheck = { ok: boolean; reason?: string };

export type CheckpointVerification = ChainVerification & { checkpoint: CheckpointCheck };

type VerifyRow = {
  rows_checked: string;
  head_chain_seq: string | null;
  head_row_hash: string | null;
  broken_chain_seq: string | null;
  broken_task_id: string | null;
  broken_seq: number | null;
  broken_reason: string | null;
  checkpoint_row_hash: string | null;
};

// One statement, so the chain and the checkpoint's row are read from the same snapshot.
const VERIFY_SQL = `
  SELECT v.rows_checked::text, v.head_chain_seq::text, v.head_row_hash,
         v.broken_chain_seq::text, v.broken_task_id, v.broken_seq, v.broken_reason,
         (SELECT t.row_hash FROM tasks t WHERE t.chain_seq = $1::bigint) AS checkpoint_row_hash
    FROM ledger_verify() v`;

/**
 * Recomputes every row hash and link in PostgreSQL (ledger_verify(), sql/003_ledger_guard.sql)
 * and names the first broken row. An intact chain can still have lost or rewritten its newest
 * rows: only a checkpoint kept outside the database shows that (verifyAgainstCheckpoint).
 */
export async function verifyChain(db: Db): Promise<ChainVerification> {
  const { verification } = await runVerification(db, null);
  return verification;
}

/**
 * The chain must be intact and the checkpoint's row must still be there with the hash the
 * checkpoint recorded. As every row hash covers its predecessor, that row vouches for all the
 * rows up to it.
 */
export async function verifyAgainstCheckpoint(db: Db, checkpoint: ChainHead): Promise<CheckpointVerification> {
  const { verification, checkpointRowHash } = await runVerification(db, checkpoint.chainSeq);
  const check = compareWithCheckpoint(checkpoint, checkpointRowHash, verification.head);
  return { ...verification, ok: verification.ok && check.ok, checkpoint: check };
}

async function runVerification(
  db: Db,
  checkpointChainSeq: string | null,
): Promise<{ verification: ChainVerification; checkpointRowHash: string | null }> {
  const started = process.hrtime.bigint();
  const [row] = await db.query<VerifyRow>(VERIFY_SQL, [checkpointChainSeq]);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (!row) throw new Error('ledger_verify() returned no row');
  return { verification: toVerification(row, ms), checkpointRowHash: row.checkpoint_row_hash };
}

function toVerification(row: VerifyRow, ms: number): ChainVerification {
  const head =
    row.head_chain_seq !== null && row.head_row_hash !== null
      ? { chainSeq: row.head_chain_seq, rowHash: row.head_row_hash }
      : null;
  const verification: ChainVerification = { ok: row.broken_chain_seq === null, rows: Number(row.rows_checked), head, ms };
  if (row.broken_chain_seq !== null) {
    // ledger_verify() fills the broken_* columns together, from the broken row itself.
    verification.firstBroken = {
      chainSeq: row.broken_chain_seq,
      taskId: row.broken_task_id!,
      seq: row.broken_seq!,
      reason: row.broken_reason!,
    };
  }
  return verification;
}

function compareWithCheckpoint(
  checkpoint: ChainHead,
  currentRowHash: string | null,
  head: ChainHead | null,
): CheckpointCheck {
  if (currentRowHash === null) {
    const end = head ? `the ledger now ends at chain_seq ${head.chainSeq}` : 'the ledger is now empty';
    return {
      ok: false,
      reason: `row chain_seq ${checkpoint.chainSeq} recorded by the checkpoint is missing: ${end} (rows were removed from the tail)`,
    };
  }
  if (currentRowHash !== checkpoint.rowHash) {
    return {
      ok: false,
      reason: `row chain_seq ${checkpoint.chainSeq} has row_hash ${currentRowHash}, the checkpoint recorded ${checkpoint.rowHash} (the ledger was rewritten at or before that row)`,
    };
  }
  return { ok: true };
}
