import type { QueryResultRow } from 'pg';
import type { Db } from '../../src/db/pool';
import { createAuditQueries, type AuditQueries } from '../../src/ledger/auditQueries';

/**
 * The plan of the first statement an audit query method sends (SET aside), with the scans that
 * skip every index turned off: on a test's few thousand rows a sequential scan is cheapest, and
 * the question is which index the query can use.
 */
export async function planOfAuditQuery(db: Db, call: (queries: AuditQueries) => Promise<unknown>): Promise<string> {
  const statements: { text: string; values?: unknown[] }[] = [];
  const record = (text: string, values?: unknown[]) => {
    if (!/^\s*SET\b/i.test(text)) statements.push({ text, values });
  };
  const recording: Db = {
    ...db,
    query: <R extends QueryResultRow>(text: string, values?: unknown[]) => {
      record(text, values);
      return db.query<R>(text, values);
    },
    // Queries that read in one snapshot send their statements on the transaction's client.
    transaction: (work) =>
      db.transaction((client) =>
        work(
          new Proxy(client, {
            get: (target, name, receiver) =>
              name === 'query'
                ? (text: string, values?: unknown[]) => {
                    record(text, values);
                    return target.query(text, values);
                  }
                : Reflect.get(target, name, receiver),
          }),
        ),
      ),
  };
  await call(createAuditQueries(recording));
  return db.transaction(async (client) => {
    await client.query('SET LOCAL enable_seqscan = off');
    await client.query('SET LOCAL enable_bitmapscan = off');
    const { rows: explained } = await client.query(`EXPLAIN (FORMAT JSON) ${statements[0]!.text}`, statements[0]!.values);
    return JSON.stringify(explained[0]['QUERY PLAN']);
  });
}
