import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { TaskState } from './types';

/** Who asks, and why; the plain Temporal CLI may send no input at all. */
export interface OperatorCommand {
  by?: string;
  reason?: string;
}

export interface OverrideCommand extends OperatorCommand {
  /** Dispatch to this agent; else the live agent with the most headroom. */
  agentId?: string;
}

/** What the dispatcher hands a waiting task: where to run and the agent's load at that moment. */
export interface CapacityGrant {
  agentId: string;
  taskQueue: string;
  loadPctAtDispatch: number;
  overridden: boolean;
}

export const stateQuery = defineQuery<TaskState>('state');

/** Operator commands are Updates: a validator rejects an invalid transition before history. */
export const pauseUpdate = defineUpdate<TaskState, [OperatorCommand]>('pause');
export const resumeUpdate = defineUpdate<TaskState, [OperatorCommand]>('resume');
export const overrideUpdate = defineUpdate<TaskState, [OverrideCommand]>('override');
export const cancelUpdate = defineUpdate<TaskState, [OperatorCommand]>('cancel');

/** Automatic resume is a Signal: durable even while no worker is running. */
export const capacityGrantedSignal = defineSignal<[CapacityGrant]>('capacityGranted');
