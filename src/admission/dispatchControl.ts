import type { PoolClient } from 'pg';
import type { DispatchState } from '../../contracts';
import type { Db } from '../db/pool';

/** LISTEN/NOTIFY channel that wakes the dispatcher: a heartbeat, a task end, a release. */
export const DISPATCH_CHANNEL = 'opsledger_dispatch';

/** A pool client inside a transaction, or the pool itself. */
type Queryable = { query(text: string, values: unknown[]): Promise<unknown> };

/** Inside a transaction the notification is sent at commit, so the dispatcher sees what woke it. */
export async function wakeDispatcher(q: Queryable, about: string): Promise<void> {
  await q.query('SELECT pg_notify($1, $2)', [DISPATCH_CHANNEL, about]);
}

export async function isDispatchHeld(client: PoolClient): Promise<boolean> {
  const { rows } = await client.query<{ held: boolean }>('SELECT held FROM dispatch_control');
  return rows[0]?.held ?? false;
}

/** The maintenance switch: while held, no pool dispatches anything, whatever capacity there is. */
export function createDispatchControl(db: Db) {
  return {
    async setDispatchHold(held: boolean, by: string): Promise<void> {
      await db.query('UPDATE dispatch_control SET held = $1, held_by = $2, changed_at = now()', [held, held ? by : null]);
      await wakeDispatcher(db, 'dispatch');
    },

    async dispatchHold(): Promise<DispatchState> {
      const [row] = await db.query<{ held: boolean; held_by: string | null; changed_at: Date }>(
        'SELECT held, held_by, changed_at FROM dispatch_control',
      );
      return { held: row?.held ?? false, heldBy: row?.held_by ?? null, changedAt: (row?.changed_at ?? new Date()).toISOString() };
    },
  };
}
