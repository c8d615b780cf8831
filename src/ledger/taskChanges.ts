import type { Notification, PoolClient } from 'pg';
import type { Db } from '../db/pool';
import type { TaskStatus } from '../../contracts';
import { logger } from '../logger';

/** Every ledger append notifies this channel with `<status> <taskId>` (repository.ts). */
export const LEDGER_APPEND_CHANNEL = 'opsledger_ledger_append';

/** A row appended for a task: its status, and which notice told it (the same for every caller it woke). */
export type Appended = { status: TaskStatus; notice: number };

export type TaskChange = {
  /** The row appended for the task, or undefined when the wait ran out or was cancelled. */
  changed: Promise<Appended | undefined>;
  cancel(): void;
};

export type TaskChanges = {
  /**
   * Starts waiting for the next ledger row of the task. It resolves only once the listener is
   * live, so a caller that reads the task's state after it cannot miss a change in between.
   */
  next(taskId: string, ms: number): Promise<TaskChange>;
  /** How many callers wait now. */
  waiting(): number;
};

type Waiter = { taskId: string; done(changed: Appended | undefined): void };

/**
 * One listener for a whole API process, however many callers wait: one PostgreSQL connection with
 * LISTEN, held only while someone waits (so closing the pool never waits on it), and one map from
 * task id to its waiters. Waiting costs Temporal nothing: each caller reads the task's state when
 * it starts and once more when its task changes or its wait ends.
 */
export function createTaskChanges(db: Db): TaskChanges {
  const waiters = new Map<string, Set<Waiter>>();
  let count = 0;
  let notices = 0;
  let listening: Promise<PoolClient> | undefined;

  const wakeAll = () => {
    for (const set of waiters.values()) for (const waiter of [...set]) waiter.done(undefined);
  };

  const onNotification = (message: Notification) => {
    const [status, taskId] = splitOnce(message.payload ?? '');
    const appended = { status: status as TaskStatus, notice: (notices += 1) };
    for (const waiter of [...(waiters.get(taskId) ?? [])]) waiter.done(appended);
  };

  const listen = async (): Promise<PoolClient> => {
    const client = await db.pool.connect();
    client.on('notification', onNotification);
    // A lost connection may have dropped a notice: every waiter reads its task again.
    client.on('error', (err) => {
      if (listening === undefined) return;
      listening = undefined;
      client.release(err);
      logger.warn({ err }, 'task change listener lost its connection; waiters read their tasks again');
      wakeAll();
    });
    await client.query(`LISTEN ${LEDGER_APPEND_CHANNEL}`);
    return client;
  };

  const stopListening = () => {
    const closing = listening;
    listening = undefined;
    void closing?.then(
      async (client) => {
        client.removeListener('notification', onNotification);
        await client.query(`UNLISTEN ${LEDGER_APPEND_CHANNEL}`).then(
          () => client.release(),
          (err: Error) => client.release(err),
        );
      },
      () => undefined,
    );
  };

  return {
    async next(taskId, ms) {
      listening ??= listen().catch((err: unknown) => {
        listening = undefined;
        throw err;
      });
      let waiter!: Waiter;
      const changed = new Promise<Appended | undefined>((resolve) => {
        const timer = setTimeout(() => waiter.done(undefined), ms);
        waiter = {
          taskId,
          done(value) {
            clearTimeout(timer);
            const set = waiters.get(taskId);
            if (!set?.delete(waiter)) return;
            if (set.size === 0) waiters.delete(taskId);
            count -= 1;
            if (count === 0) stopListening();
            resolve(value);
          },
        };
        const set = waiters.get(taskId) ?? new Set<Waiter>();
        set.add(waiter);
        waiters.set(taskId, set);
        count += 1;
      });
      try {
        await listening;
      } catch (err) {
        waiter.done(undefined);
        throw err;
      }
      return { changed, cancel: () => waiter.done(undefined) };
    },
    waiting: () => count,
  };
}

function splitOnce(payload: string): [string, string] {
  const space = payload.indexOf(' ');
  return [payload.slice(0, space), payload.slice(space + 1)];
}
