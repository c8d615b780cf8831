import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { PoolClient } from 'pg';
import { capacityGrantedSignal } from '../../workflows/messages';
import type { Db } from '../db/pool';
import { logger } from '../logger';
import { DISPATCH_CHANNEL } from './dispatchControl';
import type { AdmissionRepository } from './repository';

export type DispatcherOptions = {
  db: Db;
  admission: AdmissionRepository;
  temporal: Client;
  /** The shared task queue whose waiting tasks this dispatcher resumes; its workflows live on `temporal`. */
  pool: string;
  /** The timer that catches anything a notification missed. */
  intervalMs?: number;
};

// Session lock per pool: one dispatcher (in whichever worker of the pool holds it) walks its queue.
const LEADER_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtext('opsledger.dispatcher.' || $1)) AS leader";

const MAX_RETRY_DELAY_MS = 30_000;

/**
 * The one place that resumes waiting tasks. Whichever worker holds the leader lock listens for
 * heartbeats and task ends (LISTEN/NOTIFY), runs a dispatch pass (priority, then age), and
 * signals each granted workflow; a grant stays in pause_queue until its signal is accepted, so a
 * crash between the two loses nothing.
 */
export function startDispatcher({ db, admission, temporal, pool, intervalMs = 1000 }: DispatcherOptions) {
  let stopped = false;
  let leader: PoolClient | undefined;
  let passing = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;

  const pass = async () => {
    if (passing) {
      again = true;
      return;
    }
    passing = true;
    try {
      do {
        again = false;
        for (const grant of await admission.dispatch(pool)) {
          const { taskId, ...signal } = grant;
          try {
            await temporal.workflow.getHandle(taskId).signal(capacityGrantedSignal, signal);
            await admission.grantDelivered(taskId);
            logger.info({ taskId, agentId: grant.agentId }, 'capacity granted; task resumed');
          } catch (err) {
            if (err instanceof WorkflowNotFoundError) {
              await admission.ended(taskId);
              logger.warn({ taskId }, 'granted task has no running workflow; its reservation was freed');
            } else {
              throw err;
            }
          }
        }
      } while (again && !stopped);
    } catch (err) {
      logger.warn({ err }, 'dispatch pass failed; retrying on the next tick');
    } finally {
      passing = false;
    }
  };

  /**
   * A dropped LISTEN connection goes back to the pool destroyed: kept checked out, each drop would
   * cost the pool one connection for good, until appends wait forever for one.
   */
  const loseLeadership = (client: PoolClient, err: Error) => {
    if (leader !== client) return;
    leader = undefined;
    failures += 1;
    client.release(err);
    logger.warn({ err, pool }, 'dispatcher lost its connection; it, or another worker, takes over');
  };

  const becomeLeader = async () => {
    let client: PoolClient | undefined;
    try {
      client = await db.pool.connect();
      const { rows } = await client.query<{ leader: boolean }>(LEADER_LOCK_SQL, [pool]);
      if (!rows[0]?.leader) {
        client.release();
        failures = 0;
        return;
      }
      const listening = client;
      listening.on('notification', () => void pass());
      // Both fire for one drop (the server's FATAL, then the closed socket); the first one counts.
      listening.on('error', (err) => loseLeadership(listening, err));
      listening.on('end', () => loseLeadership(listening, new Error('connection ended')));
      await listening.query(`LISTEN ${DISPATCH_CHANNEL}`);
      leader = listening;
      failures = 0;
      logger.info({ pool }, 'this worker is the dispatcher');
      void pass();
    } catch (err) {
      client?.release(err as Error);
      failures += 1;
      logger.warn({ err, pool }, 'could not try for dispatcher leadership');
    }
  };

  // While PostgreSQL is away, retries space out instead of hammering it every interval.
  const nextDelay = () => Math.min(intervalMs * 2 ** failures, MAX_RETRY_DELAY_MS);

  const tick = async () => {
    if (stopped) return;
    if (leader) await pass();
    else await becomeLeader();
    if (!stopped) timer = setTimeout(() => void tick(), nextDelay());
  };
  void tick();

  return {
    isLeader: () => leader !== undefined,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      while (passing) await new Promise((r) => setTimeout(r, 20));
      const client = leader;
      leader = undefined;
      // Closing the connection releases the session lock for the next worker.
      client?.release(true);
    },
  };
}

export type Dispatcher = ReturnType<typeof startDispatcher>;
