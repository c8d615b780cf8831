// The package's API for orchestrators written in TypeScript.
export { SubmitTaskRequest, type TaskSpec } from './tasks/schema';
export { startTask, connectTemporal } from './temporal/client';
export { taskWorkflow, stateQuery } from '../workflows';
export type { TaskState, TaskStatus, PlaybookRun } from '../workflows/types';
