import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { AdmissionRequest } from '../../contracts';
import { stateQuery } from '../../workflows/messages';
import type { Db } from '../db/pool';
import { logger } from '../logger';
import { wakeDispatcher } from './dispatchControl';
import type { AdmissionRepository } from './repository';

/**
 * Makes pause_queue and reservations agree with Temporal after a restart: rows of workflows that
 * are closed or gone are removed, and a waiting workflow that lost its row gets it back.
 */
export async function reconcileWithTemporal(opts: {
  admission: AdmissionRepository;
  temporal: Client;
  pool: string;
}): Promise<{ removed: number; requeued: number }> {
  const { admission, temporal, pool } = opts;
  let removed = 0;
  for (const taskId of await admission.trackedTasks(pool)) {
    if (!(await isRunning(temporal, taskId))) {
      await admission.ended(taskId);
      removed += 1;
    }
  }

  let requeued = 0;
  const tracked = new Set(await admission.trackedTasks(pool));
  const waiting = temporal.workflow.list({
    query: `OpsStatus = 'paused' AND ExecutionStatus = 'Running' AND TaskQueue = '${pool.replace(/'/g, '')}'`,
  });
  for await (const workflow of waiting) {
    if (tracked.has(workflow.workflowId)) continue;
    const state = await temporal.workflow.getHandle(workflow.workflowId).query(stateQuery);
    if (!state.waiting) continue;
    const request = { taskId: state.taskId, pool: state.pool, priority: state.priority, needs: state.needs };
    if (await admission.requeue(request, { heldBy: state.waiting.heldBy, enqueuedAt: workflow.startTime })) requeued += 1;
  }
  if (removed || requeued) logger.info({ removed, requeued }, 'pause queue reconciled with Temporal');
  return { removed, requeued };
}

async function isRunning(temporal: Client, taskId: string): Promise<boolean> {
  try {
    const description = await temporal.workflow.getHandle(taskId).describe();
    return description.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** What reconciliation reads and repairs in PostgreSQL. */
export function createReconciliationQueries(db: Db) {
  return {
    /** Puts back the queue row of a workflow that waits without one (reconciliation). */
    async requeue(request: AdmissionRequest, opts: { heldBy?: string; enqueuedAt: Date }): Promise<boolean> {
      const rows = await db.query(
        `INSERT INTO pause_queue (task_id, pool, priority, reason, requirements, held_by, enqueued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (task_id) DO NOTHING RETURNING task_id`,
        [
          request.taskId, request.pool, request.priority, opts.heldBy ? 'operator_hold' : 'capacity',
          JSON.stringify(request.needs), opts.heldBy ?? null, opts.enqueuedAt,
        ],
      );
      if (rows.length > 0) await wakeDispatcher(db, request.taskId);
      return rows.length > 0;
    },

    /** A pool's queue rows and reservations, for reconciliation with the Temporal server that runs its workflows. */
    async trackedTasks(pool: string): Promise<string[]> {
      const rows = await db.query<{ task_id: string }>(
        `SELECT task_id FROM pause_queue WHERE pool = $1
         UNION
         SELECT r.task_id FROM reservations r JOIN agents a ON a.agent_id = r.agent_id WHERE a.pool = $1`,
        [pool],
      );
      return rows.map((r) => r.task_id);
    },
  };
}
