import { Transform, type Readable } from 'node:stream';
import QueryStream from 'pg-query-stream';
import type { AuditRow } from '../../contracts';
import type { Db } from '../db/pool';
import type { AuditFilter } from './auditFilters';
import { toAuditRow } from './auditRows';
import { LEDGER_COLUMNS, toLedgerRow } from './repository';
import { filterConditions, Params } from './rowFilter';

/**
 * Every row matching a filter, newest first, as /audit pages them, but in one statement read
 * through a cursor: a batch of rows is in memory at a time, however many match, and the next
 * batch is fetched only when the client has taken the last one (stream back-pressure).
 */

const BATCH_ROWS = 500;

type RawLedgerRow = Parameters<typeof toLedgerRow>[0];

/** Rows in the order of GET /audit, as AuditRow objects; destroying the stream closes the cursor. */
export async function streamAuditRows(db: Db, filter: AuditFilter): Promise<Readable> {
  const params = new Params();
  const where = filterConditions(filter, params);
  const client = await db.pool.connect();
  const rows = client.query(
    new QueryStream(
      `SELECT ${LEDGER_COLUMNS} FROM tasks t
        WHERE ${where.length > 0 ? where.join(' AND ') : 'true'}
        ORDER BY t.created_at DESC, t.id DESC`,
      params.values,
      { batchSize: BATCH_ROWS, highWaterMark: BATCH_ROWS },
    ),
  );
  // A checked-out client's error has no other listener: unheard, it would end the process.
  const onConnectionError = (err: Error) => rows.destroy(err);
  client.on('error', onConnectionError);
  let released = false;
  const release = (err?: Error) => {
    if (released) return;
    released = true;
    client.off('error', onConnectionError);
    // A connection whose cursor broke off is not handed to the next caller.
    client.release(err);
  };
  rows.once('close', () => release());
  rows.once('error', (err) => release(err));
  const toAuditRows = new Transform({
    objectMode: true,
    transform(raw: RawLedgerRow, _encoding, done) {
      done(null, toAuditRow(toLedgerRow(raw)) satisfies AuditRow);
    },
  });
  rows.once('error', (err) => toAuditRows.destroy(err));
  toAuditRows.once('close', () => rows.destroy());
  return rows.pipe(toAuditRows);
}
