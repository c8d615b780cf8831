import { FINAL_STATUSES } from '../../contracts';
import type { AuditFilter } from './auditFilters';
import { statusCondition } from './statusCondition';
import type { CursorPosition } from './cursor';
import { microsToIso } from './micros';

/**
 * The WHERE conditions of an AuditFilter over `tasks t`, for every query that walks the ledger's
 * rows under the filters of /audit: the row lists (auditRows.ts), the task lines (taskLines.ts)
 * and the export (exportRows.ts), so that every view of one filter selects the same rows.
 */

const FINAL_ROW = statusCondition(FINAL_STATUSES);
// Lax jsonpath: a missing or non-numeric counts.changed is simply not > 0.
const CHANGED_SOMETHING = `coalesce(t.outcome @? '$.counts.changed ? (@ > 0)', false)`;

/** Numbered parameters for one statement. */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  /** An exact instant: ISO text with all six fraction digits, which PostgreSQL parses without loss. */
  time(micros: bigint): string {
    return `${this.add(microsToIso(micros))}::timestamptz`;
  }
}

export function filterConditions(filter: AuditFilter, params: Params): string[] {
  const where: string[] = [];
  if (filter.statuses) where.push(statusCondition(filter.statuses));
  if (filter.services) {
    const services = params.add(filter.services);
    where.push(`t.services_touched @> ${services}::text[]`);
    // Reads no column of t, so it is evaluated once: a service the ledger never saw ends the query
    // before the scan (sql/002_ledger_totals.sql).
    where.push(`ledger_knows_services(${services}::text[])`);
  }
  for (const action of filter.actions ?? []) where.push(`t.action = ${params.add(action)}`);
  if (filter.failureClass) where.push(`t.failure_class = ${params.add(filter.failureClass)}`);
  if (filter.agent !== undefined) where.push(`t.agent = ${params.add(filter.agent)}`);
  if (filter.taskId !== undefined) where.push(`t.task_id = ${params.add(filter.taskId)}`);
  if (filter.changed !== undefined) where.push(`${FINAL_ROW} AND ${filter.changed ? '' : 'NOT '}${CHANGED_SOMETHING}`);
  if (filter.from !== undefined) where.push(`t.created_at >= ${params.time(filter.from)}`);
  if (filter.to !== undefined) where.push(`t.created_at < ${params.time(filter.to)}`);
  return where;
}

/** Rows before a keyset position, in the ledger's newest-first order (created_at, id). */
export function beforePosition(position: CursorPosition, params: Params): string {
  return `(t.created_at, t.id) < (${params.time(position.createdAtMicros)}, ${params.add(position.id)}::bigint)`;
}

export const MICROS_OF_CREATED_AT = `(extract(epoch FROM t.created_at) * 1000000)::bigint::text`;
