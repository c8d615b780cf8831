// The package's API for orchestrators written in TypeScript.
export { createApiClient, ApiError, type ApiClient, type LiveTask, type SubmitResult } from './client/apiClient';
export { SubmitTaskRequest, ACTIONS, type TaskSpec } from './tasks/schema';
export { startTask, connectTemporal } from './temporal/client';
export { taskWorkflow, stateQuery, pauseUpdate, resumeUpdate, overrideUpdate, cancelUpdate } from '../workflows';
export type { TaskState, TaskStatus, PlaybookRun, TaskWorkflowInput } from '../workflows/types';
