import { inferIntents, type FailureClass, type TaskLine, type TaskStatus } from '../../contracts';
import type { Db } from '../db/pool';
import type { AuditFilter } from './auditFilters';
import type { CursorPosition } from './cursor';
import { beforePosition, filterConditions, MICROS_OF_CREATED_AT, Params } from './rowFilter';

/**
 * Tasks as they stand, one line each: the rows matching a filter, newest first, kept only where
 * the row is its task's latest. No table is derived for it (the ledger is append-only and
 * chained, and every append paying for one would slow all of them): the walk is the rows list's
 * walk of (created_at, id) backwards, and each row it meets costs one probe of the unique
 * (task_id, run_id, seq) index to learn whether a newer row of its task exists, and one more for
 * the task's first row on the lines it keeps (a task has a handful of rows, so the probe reads
 * them all; an index on (task_id, created_at, id) made no measurable difference, docs/ledger.md).
 */

export type TaskLinesPageRows = { tasks: TaskLine[]; next: CursorPosition | null };

type RawTaskLine = {
  id: string;
  task_id: string;
  run_id: string | null;
  seq: number;
  status: TaskStatus;
  action: string;
  services_touched: string[];
  agent: string | null;
  actor: string;
  failure_class: FailureClass | null;
  created_at: Date;
  created_at_micros: string;
  first_at: Date;
  submitted_by: string;
  wall_time_s: number | null;
  estimated_duration_s: number | null;
};

const NO_NEWER_ROW_OF_ITS_TASK = `NOT EXISTS (
  SELECT 1 FROM tasks n WHERE n.task_id = t.task_id AND (n.created_at, n.id) > (t.created_at, t.id))`;

/** A number in resources_used, or null where it is absent or not a number. */
const resourceNumber = (field: string) =>
  `CASE WHEN jsonb_typeof(t.resources_used -> '${field}') = 'number' THEN (t.resources_used ->> '${field}')::float8 END`;

export function createTaskLineQueries(db: Db) {
  return {
    /** GET /audit/tasks: the tasks whose latest row matches every filter, by that row, newest first. */
    async list(filter: AuditFilter, page: { limit: number; after?: CursorPosition }): Promise<TaskLinesPageRows> {
      const params = new Params();
      const where = [...filterConditions(filter, params), NO_NEWER_ROW_OF_ITS_TASK];
      if (page.after) where.push(beforePosition(page.after, params));
      // One line more than asked tells whether there is a next page.
      const rows = await db.query<RawTaskLine>(
        `SELECT t.id::text AS id, t.task_id, t.run_id, t.seq, t.status, t.action, t.services_touched, t.agent, t.actor,
                t.failure_class, t.created_at, ${MICROS_OF_CREATED_AT} AS created_at_micros,
                first.created_at AS first_at, first.actor AS submitted_by,
                ${resourceNumber('wallTimeS')} AS wall_time_s, ${resourceNumber('estimatedDurationS')} AS estimated_duration_s
           FROM tasks t
          CROSS JOIN LATERAL (
                SELECT f.created_at, f.actor FROM tasks f WHERE f.task_id = t.task_id ORDER BY f.created_at, f.id LIMIT 1
          ) first
          WHERE ${where.join(' AND ')}
          ORDER BY t.created_at DESC, t.id DESC
          LIMIT ${params.add(page.limit + 1)}`,
        params.values,
      );
      const served = rows.slice(0, page.limit);
      const last = served[served.length - 1];
      return {
        tasks: served.map(toTaskLine),
        next: rows.length > page.limit && last ? { createdAtMicros: BigInt(last.created_at_micros), id: last.id } : null,
      };
    },
  };
}

export type TaskLineQueries = ReturnType<typeof createTaskLineQueries>;

function toTaskLine(row: RawTaskLine): TaskLine {
  return {
    taskId: row.task_id,
    runId: row.run_id,
    status: row.status,
    action: row.action,
    services: row.services_touched,
    intents: inferIntents(row.action, row.services_touched),
    agent: row.agent,
    actor: row.actor,
    submittedBy: row.submitted_by,
    failureClass: row.failure_class,
    latestSeq: row.seq,
    firstAt: row.first_at.toISOString(),
    lastAt: row.created_at.toISOString(),
    elapsedS: (row.created_at.getTime() - row.first_at.getTime()) / 1000,
    wallTimeS: row.wall_time_s,
    estimatedDurationS: row.estimated_duration_s,
  };
}
