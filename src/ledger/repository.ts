import type { Db } from '../db/pool';
import type { FailureClass, Json, LedgerEntry, TaskStatus } from '../../workflows/types';

/** A ledger row as the API returns it. */
export interface LedgerRow {
  id: string;
  taskId: string;
  runId: string | null;
  seq: number;
  status: TaskStatus;
  action: string;
  services: string[];
  agent: string | null;
  actor: string;
  plan: Json | null;
  outcome: Json | null;
  resourcesUsed: Json | null;
  failure: Json | null;
  failureClass: FailureClass | null;
  suggestions: Json | null;
  createdAt: string;
  updatedAt: string;
  chainSeq: string;
  prevHash: string;
  rowHash: string;
}

export const LEDGER_COLUMNS = `id::text, task_id, run_id, seq, status, action, services_touched, agent, actor,
  plan, outcome, resources_used, failure, failure_class, suggestions, created_at, updated_at,
  chain_seq::text, prev_hash, row_hash`;

type RawRow = {
  id: string; task_id: string; run_id: string | null; seq: number; status: TaskStatus; action: string;
  services_touched: string[]; agent: string | null; actor: string; plan: Json | null; outcome: Json | null;
  resources_used: Json | null; failure: Json | null; failure_class: FailureClass | null; suggestions: Json | null;
  created_at: Date; updated_at: Date; chain_seq: string; prev_hash: string; row_hash: string;
};

export function toLedgerRow(r: RawRow): LedgerRow {
  return {
    id: r.id, taskId: r.task_id, runId: r.run_id, seq: r.seq, status: r.status, action: r.action,
    services: r.services_touched, agent: r.agent, actor: r.actor, plan: r.plan, outcome: r.outcome,
    resourcesUsed: r.resources_used, failure: r.failure, failureClass: r.failure_class,
    suggestions: r.suggestions, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
    chainSeq: r.chain_seq, prevHash: r.prev_hash, rowHash: r.row_hash,
  };
}

/**
 * The append's INSERT, against the ledger or (for the benchmark's baseline) a twin table of the
 * same shape; the chain columns and times are the trigger's to fill.
 */
export function appendStatement(table: 'tasks' | 'tasks_plain'): string {
  return `INSERT INTO ${table} (task_id, run_id, seq, status, action, services_touched, agent, actor,
                        plan, outcome, resources_used, failure, failure_class)
   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
   RETURNING ${LEDGER_COLUMNS}`;
}

export function appendValues(entry: LedgerEntry): unknown[] {
  return [
    entry.taskId, entry.runId, entry.seq, entry.status, entry.action, entry.services, entry.agent ?? null,
    entry.actor, jsonb(entry.plan), jsonb(entry.outcome), jsonb(entry.resourcesUsed),
    jsonb(entry.failure), entry.failureClass ?? null,
  ];
}

export function createLedgerRepository(db: Db) {
  return {
    /**
     * Appends one row, exactly once: a retry with the same (taskId, seq) is skipped by the
     * chain trigger and answers the row already recorded.
     */
    async append(entry: LedgerEntry): Promise<LedgerRow> {
      const inserted = await db.query<RawRow>(appendStatement('tasks'), appendValues(entry));
      const row = inserted[0] ?? (await this.row(entry.taskId, entry.seq));
      if (!row) throw new Error(`ledger append of ${entry.taskId}#${entry.seq} left no row`);
      return toLedgerRow(row as RawRow);
    },

    async row(taskId: string, seq: number): Promise<RawRow | undefined> {
      const rows = await db.query<RawRow>(`SELECT ${LEDGER_COLUMNS} FROM tasks WHERE task_id = $1 AND seq = $2`, [
        taskId,
        seq,
      ]);
      return rows[0];
    },

    /**
     * The median wall time of the last 50 successful runs with the same action touching any of
     * the same services (the same intent), for tasks whose plan gives no estimate.
     */
    async medianDuration(action: string, services: string[]): Promise<{ seconds: number; runs: number } | undefined> {
      const [row] = await db.query<{ seconds: string | null; runs: string }>(
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY wall) AS seconds, count(*) AS runs
           FROM (SELECT (resources_used ->> 'wallTimeS')::numeric AS wall
                   FROM tasks
                  WHERE status = 'succeeded' AND action = $1 AND services_touched && $2::text[]
                    AND resources_used ? 'wallTimeS'
                  ORDER BY created_at DESC
                  LIMIT 50) recent`,
        [action, services],
      );
      return row?.seconds === null || row === undefined ? undefined : { seconds: Number(row.seconds), runs: Number(row.runs) };
    },

    /** The whole trail of one task, in the order it happened. */
    async trail(taskId: string): Promise<LedgerRow[]> {
      const rows = await db.query<RawRow>(`SELECT ${LEDGER_COLUMNS} FROM tasks WHERE task_id = $1 ORDER BY seq`, [
        taskId,
      ]);
      return rows.map(toLedgerRow);
    },
  };
}

export type LedgerRepository = ReturnType<typeof createLedgerRepository>;

/** pg sends a JS array as a PostgreSQL array; jsonb columns need the JSON text. */
function jsonb(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
