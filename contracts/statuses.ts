import { z } from 'zod';

/** Every decision or outcome the ledger records, in the order a task's trail usually has them. */
export const TASK_STATUSES = [
  'queued', 'paused', 'resumed', 'dispatched', 'succeeded', 'failed', 'cancelled', 'timed_out',
] as const;
export const TaskStatus = z.enum(TASK_STATUSES).meta({ id: 'TaskStatus', description: 'A ledger row: a decision or an outcome.' });
export type TaskStatus = z.infer<typeof TaskStatus>;

/** A task's last row has one of these; after it nothing is appended. */
export const FINAL_STATUSES = ['succeeded', 'failed', 'cancelled', 'timed_out'] as const satisfies readonly TaskStatus[];
export type FinalStatus = (typeof FINAL_STATUSES)[number];

/** Final rows that did not succeed: the failures that audit queries list and count by class. */
export const FAILURE_STATUSES = ['failed', 'timed_out', 'cancelled'] as const satisfies readonly FinalStatus[];

export function isFinalStatus(status: string): status is FinalStatus {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

/** Why a task failed; the rules are in docs/failure-classes.md. */
export const FAILURE_CLASSES = [
  'resource_constraint', 'application_error', 'infrastructure', 'timeout', 'cancelled',
] as const;
export const FailureClass = z.enum(FAILURE_CLASSES).meta({ id: 'FailureClass' });
export type FailureClass = z.infer<typeof FailureClass>;

/** Why a task waits before dispatch. */
export const WAIT_REASONS = ['capacity', 'operator_hold', 'dispatch_hold'] as const;
export const WaitReason = z.enum(WAIT_REASONS).meta({ id: 'WaitReason' });
export type WaitReason = z.infer<typeof WaitReason>;

/** The action vocabulary; with a service it forms an intent (deploy + kuma -> deploy_kuma). */
export const ACTIONS = [
  'deploy', 'add', 'remove', 'restart', 'update', 'configure', 'backup', 'restore', 'rollback', 'check',
] as const;
export const Action = z.enum(ACTIONS).meta({ id: 'Action', description: 'What the task does to its services.' });
export type Action = z.infer<typeof Action>;
