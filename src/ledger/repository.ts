import type { Db } from '../db/pool';
import { LedgerConflictError } from '../errors';
import { LEDGER_APPEND_CHANNEL } from './taskChanges';
import type { FailureClass, Json, LedgerEntry, TaskStatus } from '../../contracts';

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

type Column = {
  name: string;
  /** How a SELECT reads it, where that is not the bare column: bigints as text. */
  read?: string;
  /** pg reads it as a Date; the API gives ISO text. */
  time?: true;
  /** Its value in an append; the columns without one are the table's or the chain trigger's to fill. */
  write?: (entry: LedgerEntry) => unknown;
};

/** Every column of a ledger row, in the table's order, under its field of LedgerRow. */
const COLUMNS = {
  id: { name: 'id', read: 'id::text' },
  taskId: { name: 'task_id', write: (e) => e.taskId },
  runId: { name: 'run_id', write: (e) => e.runId },
  seq: { name: 'seq', write: (e) => e.seq },
  status: { name: 'status', write: (e) => e.status },
  action: { name: 'action', write: (e) => e.action },
  services: { name: 'services_touched', write: (e) => e.services },
  agent: { name: 'agent', write: (e) => e.agent ?? null },
  actor: { name: 'actor', write: (e) => e.actor },
  plan: { name: 'plan', write: (e) => jsonb(e.plan) },
  outcome: { name: 'outcome', write: (e) => jsonb(e.outcome) },
  resourcesUsed: { name: 'resources_used', write: (e) => jsonb(e.resourcesUsed) },
  failure: { name: 'failure', write: (e) => jsonb(e.failure) },
  failureClass: { name: 'failure_class', write: (e) => e.failureClass ?? null },
  suggestions: { name: 'suggestions' },
  createdAt: { name: 'created_at', time: true },
  updatedAt: { name: 'updated_at', time: true },
  chainSeq: { name: 'chain_seq', read: 'chain_seq::text' },
  prevHash: { name: 'prev_hash' },
  rowHash: { name: 'row_hash' },
} as const satisfies { [F in keyof LedgerRow]: Column };

type Field = keyof typeof COLUMNS;

/** A row as pg returns it: by column name, times as Date. */
type RawRow = {
  [F in Field as (typeof COLUMNS)[F]['name']]: (typeof COLUMNS)[F] extends { time: true } ? Date : LedgerRow[F];
};

const FIELDS = Object.entries(COLUMNS) as [Field, Column][];
const APPENDED = FIELDS.map(([, column]) => column).filter(
  (column): column is Column & Required<Pick<Column, 'write'>> => column.write !== undefined,
);

export const LEDGER_COLUMNS = FIELDS.map(([, column]) => column.read ?? column.name).join(', ');

/** The columns an append writes, and their placeholders, in the order of appendValues(). */
export const APPEND_COLUMNS = APPENDED.map((column) => column.name).join(', ');
export const APPEND_PLACEHOLDERS = APPENDED.map((_, i) => `$${i + 1}`).join(', ');

/**
 * The append notifies its status and task id in the same statement, so the notice goes out with the commit
 * and only for a row that was written (a retried row the chain trigger skips returns none).
 */
const APPEND_SQL = `WITH appended AS (INSERT INTO tasks (${APPEND_COLUMNS}) VALUES (${APPEND_PLACEHOLDERS}) RETURNING ${LEDGER_COLUMNS})
  SELECT appended.*, pg_notify('${LEDGER_APPEND_CHANNEL}', appended.status || ' ' || appended.task_id) AS notified FROM appended`;

export function appendValues(entry: LedgerEntry): unknown[] {
  return APPENDED.map((column) => column.write(entry));
}

export function toLedgerRow(raw: RawRow): LedgerRow {
  const byName: Record<string, unknown> = raw;
  const row: Partial<Record<Field, unknown>> = {};
  for (const [field, column] of FIELDS) {
    const value = byName[column.name];
    row[field] = column.time ? (value as Date).toISOString() : value;
  }
  return row as LedgerRow;
}


const CONFLICT_CONSTRAINT = 'tasks_task_run_seq_key';

export function createLedgerRepository(db: Db) {
  return {
    /**
     * Appends one row, exactly once: a retry of the same row under its (taskId, runId, seq) is
     * skipped by the chain trigger and answers the row already recorded; another run of the task
     * is another row.
     */
    async append(entry: LedgerEntry): Promise<LedgerRow> {
      const inserted = await db.query<RawRow>(APPEND_SQL, appendValues(entry)).catch((err: unknown) => {
        const { code, constraint, message } = err as { code?: string; constraint?: string; message: string };
        if (code === '23505' && constraint === CONFLICT_CONSTRAINT) throw new LedgerConflictError(message);
        throw err;
      });
      const row =
        inserted[0] ??
        (await db.query<RawRow>(
          `SELECT ${LEDGER_COLUMNS} FROM tasks WHERE task_id = $1 AND run_id IS NOT DISTINCT FROM $2 AND seq = $3`,
          [entry.taskId, entry.runId, entry.seq],
        ))[0];
      if (!row) throw new Error(`ledger append of ${entry.taskId}#${entry.seq} (run ${entry.runId}) left no row`);
      return toLedgerRow(row);
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

    /**
     * The whole trail of one task, in the order it happened: run by run, in the order the runs
     * began, each in its own sequence (a second run's seq starts again at 1, or, after a reset,
     * goes on from the step it was reset to).
     */
    async trail(taskId: string): Promise<LedgerRow[]> {
      const rows = await db.query<RawRow>(
        `SELECT ${LEDGER_COLUMNS} FROM tasks WHERE task_id = $1
          ORDER BY min(chain_seq) OVER (PARTITION BY run_id), seq`,
        [taskId],
      );
      return rows.map(toLedgerRow);
    },
  };
}

export type LedgerRepository = ReturnType<typeof createLedgerRepository>;

/** pg sends a JS array as a PostgreSQL array; jsonb columns need the JSON text. */
function jsonb(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
