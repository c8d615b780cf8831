import { FAILURE_STATUSES, FINAL_STATUSES, inferIntents, type AuditRow } from '../../contracts';
import type { Db } from '../db/pool';
import type { AuditFilter } from './auditFilters';
import type { CursorPosition } from './cursor';
import { durationVsEstimate } from './durations';
import { microsToIso } from './micros';
import { LEDGER_COLUMNS, toLedgerRow, type LedgerRow } from './repository';
import { statusCondition } from './statusCondition';

/**
 * Audit row lists: they walk an index ending in (created_at, id) backwards (the time index, or the
 * failures' partial ones of sql/001_ledger_chain.sql) and resume after a cursor position (keyset
 * pagination, never OFFSET).
 */

/** A page of rows, and where the next one starts (the API turns it into a signed cursor). */
export type RowsPage = { rows: AuditRow[]; next: CursorPosition | null };
export type Page = { limit: number; after?: CursorPosition };

type RawLedgerRow = Parameters<typeof toLedgerRow>[0];

/** A ledger row with what the API derives from it: its intents, and its run against its estimate. */
export function toAuditRow(row: LedgerRow): AuditRow {
  return { ...row, intents: inferIntents(row.action, row.services), duration: durationVsEstimate(row.resourcesUsed) };
}

export function createRowQueries(db: Db) {
  async function listRows(filter: AuditFilter, page: Page): Promise<RowsPage> {
    const params = new Params();
    const where = conditions(filter, params);
    if (page.after) {
      where.push(`(t.created_at, t.id) < (${params.time(page.after.createdAtMicros)}, ${params.add(page.after.id)}::bigint)`);
    }
    // One row more than asked tells whether there is a next page.
    const rows = await db.query<RawLedgerRow & { created_at_micros: string }>(
      `SELECT ${LEDGER_COLUMNS}, (extract(epoch FROM t.created_at) * 1000000)::bigint::text AS created_at_micros
       FROM tasks t
       WHERE ${where.length > 0 ? where.join(' AND ') : 'true'}
       ORDER BY t.created_at DESC, t.id DESC
       LIMIT ${params.add(page.limit + 1)}`,
      params.values,
    );
    const served = rows.slice(0, page.limit);
    const last = served[served.length - 1];
    return {
      rows: served.map((row) => toAuditRow(toLedgerRow(row))),
      next: rows.length > page.limit && last ? { createdAtMicros: BigInt(last.created_at_micros), id: last.id } : null,
    };
  }

  return {
    /** GET /audit: rows matching every filter, newest first. */
    list: listRows,

    /** GET /audit/failures: failed, timed-out and cancelled rows matching the filter, newest first. */
    failures(filter: Omit<AuditFilter, 'statuses' | 'changed'>, page: Page): Promise<RowsPage> {
      return listRows({ ...filter, statuses: [...FAILURE_STATUSES] }, page);
    },
  };
}

export type RowQueries = ReturnType<typeof createRowQueries>;

const FINAL_ROW = statusCondition(FINAL_STATUSES);
// Lax jsonpath: a missing or non-numeric counts.changed is simply not > 0.
const CHANGED_SOMETHING = `coalesce(t.outcome @? '$.counts.changed ? (@ > 0)', false)`;

/** Numbered parameters for one statement. */
class Params {
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

function conditions(filter: AuditFilter, params: Params): string[] {
  const where: string[] = [];
  if (filter.statuses) where.push(statusCondition(filter.statuses));
  if (filter.services) {
    const services = params.add(filter.services);
    where.push(`t.services_touched @> ${services}::text[]`);
    // Reads no column of t, so it is evaluated once: a service the ledger never saw ends the query
    // before the scan instead of after a walk through the whole range (sql/002_ledger_totals.sql).
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
