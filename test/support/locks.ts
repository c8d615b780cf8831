import type { PoolClient } from 'pg';
import type { Db } from '../../src/db/pool';

/**
 * Whether some session waits for an advisory lock that `holder` holds: how a test sees a step
 * that runs as a local activity (not listed among a workflow's pending activities) blocked on it.
 */
export async function someoneWaitsOnLockOf(db: Db, holder: PoolClient): Promise<boolean> {
  const { rows: [own] } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const waiting = await db.query(
    `SELECT 1 FROM pg_locks waiting JOIN pg_locks held USING (locktype, classid, objid, objsubid)
      WHERE waiting.locktype = 'advisory' AND NOT waiting.granted AND held.granted AND held.pid = $1`,
    [own!.pid],
  );
  return waiting.length > 0;
}
