import type { PoolClient } from 'pg';
import type { Db } from '../db/pool';

/**
 * Several reads that must agree, as one statement would: the running totals, their progress mark
 * and the rows counted one by one, all from the same snapshot.
 */
export function inOneSnapshot<T>(db: Db, work: (client: PoolClient) => Promise<T>): Promise<T> {
  return db.transaction(async (client) => {
    await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    return work(client);
  });
}
