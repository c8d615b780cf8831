import type { Db } from '../db/pool';
import { createAggregateQueries } from './auditAggregates';
import { createRowQueries } from './auditRows';
import { createDurationQueries } from './durations';
import { createFailureBreakdown } from './failureBreakdown';

/** The audit read side: row lists (auditRows.ts), aggregates (auditAggregates.ts), failure splits (failureBreakdown.ts) and
 * estimated against actual durations (durations.ts). */
export function createAuditQueries(db: Db) {
  const rows = createRowQueries(db);
  return { ...rows, ...createAggregateQueries(db, rows), ...createFailureBreakdown(db), ...createDurationQueries(db) };
}

export type AuditQueries = ReturnType<typeof createAuditQueries>;
