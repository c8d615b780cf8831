export { taskWorkflow, stateQuery, intentsOf } from './taskWorkflow';
export type { TaskResult } from './taskWorkflow';
