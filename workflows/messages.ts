import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CapacityGrant, OperatorCommand, OverrideCommand, TaskState } from '../contracts';

export const stateQuery = defineQuery<TaskState>('state');

/**
 * Operator commands are Updates: a validator rejects an invalid input or transition before history.
 * The plain Temporal CLI may send no input at all; the handlers take that as an empty command.
 */
export const pauseUpdate = defineUpdate<TaskState, [OperatorCommand]>('pause');
export const resumeUpdate = defineUpdate<TaskState, [OperatorCommand]>('resume');
export const overrideUpdate = defineUpdate<TaskState, [OverrideCommand]>('override');
export const cancelUpdate = defineUpdate<TaskState, [OperatorCommand]>('cancel');

/** Automatic resume is a Signal: durable even while no worker is running. */
export const capacityGrantedSignal = defineSignal<[CapacityGrant]>('capacityGranted');
