import { FAILURE_STATUSES, inferIntents, type AuditRow } from '../../contracts';
import type { Db } from '../db/pool';
import type { AuditFilter } from './auditFilters';
import type { CursorPosition } from './cursor';
import { durationVsEstimate } from './durations';
import { LEDGER_COLUMNS, toLedgerRow, type LedgerRow } from './repository';
import { beforePosition, filterConditions, MICROS_OF_CREATED_AT, Params } from './rowFilter';

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
    const where = filterConditions(filter, params);
    if (page.after) where.push(beforePosition(page.after, params));
    // One row more than asked tells whether there is a next page.
    const rows = await db.query<RawLedgerRow & { created_at_micros: string }>(
      `SELECT ${LEDGER_COLUMNS}, ${MICROS_OF_CREATED_AT} AS created_at_micros
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
