import { SubmitTaskRequest, type TaskRuntime, type TaskWorkflowInput } from '../../contracts';

/** A task as the API would build it from a minimal submit body (defaults from the same schema). */
export function benchTask(taskId: string, runtime: TaskRuntime, over: Partial<SubmitTaskRequest> = {}): TaskWorkflowInput {
  const request = SubmitTaskRequest.parse({ action: 'deploy', services: ['kuma'], playbook: 'ping.yml', ...over });
  const { secretVars: _none, ...rest } = request;
  return { ...rest, taskId, sealedSecrets: null, runtime };
}

/** Task ids unique to this run and phase, sortable by index. */
export function taskIds(prefix: string, count: number): string[] {
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(width, '0')}`);
}
