import { isDeepStrictEqual } from 'node:util';
import { Client, Connection, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { taskWorkflow } from '../../workflows';
import { inferIntents, OpsAction, OpsIntent, OpsServices, OpsStatus, type SubmitTaskResponse, type TaskWorkflowInput } from '../../contracts';
import { TaskConflictError } from '../errors';

export type TemporalTarget = { address: string; namespace: string };

/** The one place that builds the Temporal connection and client. */
export async function connectTemporal({ address, namespace }: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({ address });
  return new Client({ connection, namespace });
}

/** What starting the workflow answers; the API adds the links of its response. */
export type StartedTask = Pick<SubmitTaskResponse, 'taskId' | 'runId' | 'existing'>;

export type StartOptions = {
  /**
   * Whether the secretVars sealed into the existing task are the ones asked for now. Only a holder
   * of the key can tell; without this, a task that carries secrets never counts as the same.
   */
  sameSecrets?: (sealedBefore: string) => boolean;
};

/**
 * Starts taskWorkflow with the task id as workflow id. A second submit of the same id, running
 * or finished, never starts a second run: it is answered with the existing task when it asks for
 * what that task was started with, and refused (naming the fields) when it does not.
 */
export async function startTask(client: Client, spec: TaskWorkflowInput, options: StartOptions = {}): Promise<StartedTask> {
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
    if (err instanceof WorkflowExecutionAlreadyStartedError) return existingTask(client, spec, options);
    throw err;
  }
}

async function existingTask(client: Client, spec: TaskWorkflowInput, options: StartOptions): Promise<StartedTask> {
  const { taskId } = spec;
  const { runId } = await client.workflow.getHandle(taskId).describe();
  const differing = differingFields(await startedWith(client, taskId, runId), spec, options);
  if (differing.length > 0) {
    throw new TaskConflictError(
      `task ${taskId} was already submitted with a different ${differing.join(', ')}; a changed task needs a new taskId`,
    );
  }
  return { taskId, runId, existing: true };
}

/** The input a run was started with, as its first history event keeps it (one event is read, not the history). */
async function startedWith(client: Client, workflowId: string, runId: string): Promise<unknown> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const payload = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload ? client.options.loadedDataConverter.payloadConverter.fromPayload(payload) : undefined;
}

/** Not asked for by the submitter: the API's own settings, who submits, and the seal (compared apart, opened). */
const NOT_ASKED_FOR = new Set(['runtime', 'principal', 'principalProof', 'sealedSecrets']);

function differingFields(startedWithInput: unknown, spec: TaskWorkflowInput, { sameSecrets }: StartOptions): string[] {
  const before = jsonObject(startedWithInput);
  const now = jsonObject(spec);
  const fields = [...new Set([...Object.keys(before), ...Object.keys(now)])].filter((field) => !NOT_ASKED_FOR.has(field));
  const differing = fields.filter((field) => !isDeepStrictEqual(before[field], now[field]));
  return sameSeal(before.sealedSecrets, spec.sealedSecrets, sameSecrets) ? differing : [...differing, 'secretVars'];
}

/** Two seals of the same secrets differ (a fresh IV each), so the one before is opened, not compared. */
function sameSeal(before: unknown, now: string | null, sameSecrets: StartOptions['sameSecrets']): boolean {
  if (before === undefined || before === null) return now === null;
  return typeof before === 'string' && now !== null && sameSecrets?.(before) === true;
}

/** As JSON has it: a field that is undefined is no field. */
function jsonObject(value: unknown): Record<string, unknown> {
  const parsed: unknown = JSON.parse(JSON.stringify(value ?? {}));
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}
