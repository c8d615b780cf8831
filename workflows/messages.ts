import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CapacityGrant, OperatorCommandInput, OverrideCommandInput, TaskState } from '../contracts';

export const stateQuery = defineQuery<TaskState>('state');

/**
 * Operator commands are Updates: a validator rejects an invalid input or transition before history.
 * The plain Temporal CLI may send no input at all; the handlers take that as an empty command.
 */
export const pauseUpdate = defineUpdate<TaskState, [OperatorCommandInput]>('pause');
export const resumeUpdate = defineUpdate<TaskState, [OperatorCommandInput]>('resume');
export const overrideUpdate = defineUpdate<TaskState, [OverrideCommandInput]>('override');
export const cancelUpdate = defineUpdate<TaskState, [OperatorCommandInput]>('cancel');

/**
 * Automatic resume is a Signal: durable even while no worker is running. It only wakes the task:
 * whether a reservation stands is admission's to say, in PostgreSQL.
 */
export const capacityGrantedSignal = defineSignal<[CapacityGrant]>('capacityGranted');
