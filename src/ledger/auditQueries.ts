import type { Db } from '../db/pool';
import { createAggregateQueries } from './auditAggregates';
import { createRowQueries } from './auditRows';

/** The audit read side: row lists (auditRows.ts) and aggregates (auditAggregates.ts). */
export function createAuditQueries(db: Db) {
  const rows = createRowQueries(db);
  return { ...rows, ...createAggregateQueries(db, rows) };
}

export type AuditQueries = ReturnType<typeof createAuditQueries>;
