import { z } from 'zod';
import { WaitReason } from './statuses';
import { Requirements, TaskId } from './task';

/** What a task asks admission for. */
export interface AdmissionRequest {
  taskId: string;
  pool: string;
  priority: number;
  needs: Requirements;
}

/** Where a waiting task may run: the agent, its own task queue, and its load at that moment. */
export interface CapacityGrant {
  agentId: string;
  taskQueue: string;
  loadPctAtDispatch: number;
  overridden: boolean;
}

export type Admission =
  | ({ admitted: true } & CapacityGrant)
  | { admitted: false; reason: WaitReason; shortfall: string | null; position: number };

/** Which ask of which workflow run a local admission answers: its answer is kept under this. */
export interface AdmissionQuestion {
  runId: string;
  ask: number;
}

/** An admission, `replayed` when it is the kept answer to a question asked before. */
export type AdmissionAnswer = Admission & { replayed?: true };

/** A task waiting before dispatch, and why it waits. */
export const QueueEntry = z
  .object({
    position: z.number().int().meta({ description: 'From 1, in the answer’s order: by pool, each in dispatch order' }),
    taskId: TaskId,
    pool: z.string(),
    priority: z.number().int(),
    enqueuedAt: z.iso.datetime(),
    reason: WaitReason,
    shortfall: z.string().nullable().meta({ description: 'What the best agent lacks, while it waits for capacity' }),
    heldBy: z.string().nullable().meta({ description: 'The operator holding it' }),
    grantedAgent: z.string().nullable().meta({ description: 'Set between a grant and the workflow taking it' }),
    needs: Requirements,
  })
  .meta({ id: 'QueueEntry' });
export type QueueEntry = z.infer<typeof QueueEntry>;

/** Whether an operator holds all dispatch (maintenance). */
export const DispatchState = z
  .object({ held: z.boolean(), heldBy: z.string().nullable(), changedAt: z.iso.datetime() })
  .meta({ id: 'DispatchState' });
export type DispatchState = z.infer<typeof DispatchState>;

export const PauseQueue = z.object({ dispatch: DispatchState, tasks: z.array(QueueEntry) }).meta({ id: 'PauseQueue' });
export type PauseQueue = z.infer<typeof PauseQueue>;
