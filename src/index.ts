// The package's API for orchestrators written in TypeScript.
export { createApiClient, ApiError, type ApiClient } from './client/apiClient';
export { startTask, connectTemporal } from './temporal/client';
export { taskWorkflow, stateQuery, pauseUpdate, resumeUpdate, overrideUpdate, cancelUpdate } from '../workflows';
export {
  ACTIONS,
  SubmitTaskRequest,
  type LiveTask,
  type PlaybookRun,
  type SubmitTaskResponse,
  type TaskSpec,
  type TaskState,
  type TaskStatus,
  type TaskWorkflowInput,
} from '../contracts';
