import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { taskWorkflow } from '../../workflows';
import { inferIntents, OpsAction, OpsIntent, OpsServices, OpsStatus, type SubmitTaskResponse, type TaskWorkflowInput } from '../../contracts';

export type TemporalTarget = { address: string; namespace: string };

/** The one place that builds the Temporal connection and client. */
export async function connectTemporal({ address, namespace }: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace });
}

/** What starting the workflow answers; the API adds the links of its response. */
export type StartedTask = Pick<SubmitTaskResponse, 'taskId' | 'runId' | 'existing'>;

/**
 * Starts taskWorkflow with the task id as workflow id. A second submit of the same id, running
 * or finished, is answered with the existing task and never starts a second run.
 */
export async function startTask(client: Client, spec: TaskWorkflowInput): Promise<StartedTask> {
  try {
    const handle = await client.workflow.start(taskWorkflow, {
      taskQueue: spec.runtime.pool,
      workflowId: spec.taskId,
      args: [spec],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [
        { key: OpsStatus, value: 'queued' },
        { key: OpsServices, value: spec.services },
        { key: OpsAction, value: spec.action },
        { key: OpsIntent, value: inferIntents(spec.action, spec.services) },
      ],
    });
    return { taskId: spec.taskId, runId: handle.firstExecutionRunId, existing: false };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      const description = await client.workflow.getHandle(spec.taskId).describe();
      return { taskId: spec.taskId, runId: description.runId, existing: true };
    }
    throw err;
  }
}
