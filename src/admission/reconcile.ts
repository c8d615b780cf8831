import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { stateQuery } from '../../workflows/messages';
import { logger } from '../logger';
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
      await admission.finish(taskId);
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
