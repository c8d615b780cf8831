export { taskWorkflow } from './taskWorkflow';
export type { TaskResult } from './taskWorkflow';
export * from './messages';
