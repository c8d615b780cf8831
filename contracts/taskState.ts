import { z } from 'zod';
import { Action, FailureClass, FINAL_STATUSES, TASK_STATUSES, WaitReason } from './statuses';
import { AgentId, Requirements, ServiceName, TaskId } from './task';

/** Where a running playbook is, from its last heartbeat. */
export const PlaybookProgress = z
  .object({ play: z.string().optional(), task: z.string().optional(), stepsDone: z.number().int() })
  .meta({ id: 'PlaybookProgress' });
export type PlaybookProgress = z.infer<typeof PlaybookProgress>;

/** A ledger status, or `running`, which the live state shows between dispatch and the outcome. */
export const LiveStatus = z.enum([...TASK_STATUSES, 'running']).meta({ id: 'LiveStatus' });

/** How a playbook run ended: one of the final statuses. */
export const RunResult = z.enum(FINAL_STATUSES).meta({ id: 'RunResult' });
export type RunResult = z.infer<typeof RunResult>;

/** The live state answered by the `state` query and returned by every operator Update. */
export const TaskState = z
  .object({
    taskId: TaskId,
    status: LiveStatus,
    action: Action,
    services: z.array(ServiceName),
    intents: z.array(z.string()),
    priority: z.number().int(),
    needs: Requirements,
    pool: z.string(),
    waiting: z
      .object({
        reason: WaitReason,
        shortfall: z.string().nullable(),
        position: z.number().int().optional(),
        heldBy: z.string().optional(),
        deadline: z.iso
          .datetime()
          .optional()
          .meta({ description: 'When the wait ends in failure (resource_constraint) unless the task is dispatched first: maxWaitS after the wait began' }),
      })
      .optional()
      .meta({ description: 'Set while the task waits before dispatch.' }),
    agent: AgentId.optional(),
    attempt: z.number().int(),
    progress: PlaybookProgress.optional(),
    result: RunResult.optional(),
    failureClass: FailureClass.optional(),
  })
  .meta({ id: 'TaskState' });
export type TaskState = z.infer<typeof TaskState>;

/** GET /tasks/{taskId}: the live state and the workflow run behind it. */
export const LiveTask = TaskState.extend({
  workflow: z.object({ runId: z.string(), status: z.string().meta({ description: "Temporal's execution status" }) }),
}).meta({ id: 'LiveTask' });
export type LiveTask = z.infer<typeof LiveTask>;

export interface PlaybookCounts {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export interface PlaybookStep {
  play: string;
  task: string;
  status: 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';
  host: string;
}

export interface ResourcesUsed {
  cpuTimeS: number;
  wallTimeS: number;
  peakMemoryMb: number;
  gpuVramMb: number | null;
  agentLoadPctAtDispatch: number | null;
}

/** What one ansible-playbook run produced, as the ledger keeps it. */
export interface PlaybookRun {
  result: RunResult;
  exitCode: number | null;
  counts: PlaybookCounts;
  keyMessages: string[];
  steps: PlaybookStep[];
  outputTail: string[];
  resources: ResourcesUsed;
  /** What the runner saw of how the run ended, for the failure-class rules (workflows/failureClasses.ts). */
  evidence?: RunEvidence;
}

/** A failing task's result as Ansible reported it, cut and scrubbed. */
export interface FailedResult {
  task: string;
  host: string;
  /** The module that failed, e.g. ansible.builtin.shell, where Ansible said. */
  action?: string;
  /** The module's return code: a shell reports 128+N for a command killed by signal N, a command -N. */
  rc: number | null;
  msg: string;
  /** The last 1,000 characters of the task's stderr (and module_stderr). */
  stderr: string;
}

export interface RunEvidence {
  /** The signal that ended ansible-playbook itself (e.g. SIGKILL), or null where it exited. */
  playbookSignal: string | null;
  failedResults: FailedResult[];
  /** The OOM killer's reports the agent's kernel logged while the run went on, where its log can be read. */
  kernelOom?: string[];
  /** What the agent had available (MemAvailable) when the run began; null where it cannot tell. */
  availableMemoryMbAtStart?: number | null;
}
