import type { TaskSpec } from '../src/tasks/schema';

export type { TaskSpec };

/** Every decision or outcome the ledger records. */
export const TASK_STATUSES = [
  'queued', 'paused', 'resumed', 'dispatched', 'succeeded', 'failed', 'cancelled', 'timed_out',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const FINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled', 'timed_out'];

/** Final rows that did not succeed: the failures that audit queries list and count by class. */
export const FAILURE_STATUSES = ['failed', 'timed_out', 'cancelled'] as const satisfies readonly TaskStatus[];

export const FAILURE_CLASSES = [
  'resource_constraint', 'application_error', 'infrastructure', 'timeout', 'cancelled',
] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface Failure {
  message: string;
  stack?: string;
  resourceState?: Json;
  context?: Json;
}

/** One row to append; (taskId, seq) makes a retried append a no-op. */
export interface LedgerEntry {
  taskId: string;
  runId: string;
  seq: number;
  status: TaskStatus;
  action: string;
  services: string[];
  agent?: string;
  actor: string;
  plan?: Json;
  outcome?: Json;
  resourcesUsed?: Json;
  failure?: Failure;
  failureClass?: FailureClass;
}

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
  result: 'succeeded' | 'failed' | 'timed_out' | 'cancelled';
  exitCode: number | null;
  counts: PlaybookCounts;
  keyMessages: string[];
  steps: PlaybookStep[];
  outputTail: string[];
  resources: ResourcesUsed;
}

export interface PlaybookProgress {
  play?: string;
  task?: string;
  stepsDone: number;
}

/** Settings the submitter fixes for the task's whole life (deterministic workflow input). */
export interface TaskRuntime {
  /** The shared task queue; agents serving it are the ones admission picks from. */
  pool: string;
  heartbeatTimeoutS: number;
  /** How long a dispatched playbook may wait for its agent to pick it up. */
  scheduleToStartTimeoutS: number;
  /** Runs lost to infrastructure (agent gone, worker crash) before the task fails. */
  maxInfraAttempts: number;
}

/** What the workflow (and so Temporal's history) holds: secret variables only sealed. */
export type TaskWorkflowInput = Omit<TaskSpec, 'secretVars'> & { sealedSecrets: string | null; runtime: TaskRuntime };

export type WaitReason = 'capacity' | 'operator_hold' | 'dispatch_hold';

/** The live state answered by the `state` query and returned by every operator Update. */
export interface TaskState {
  taskId: string;
  status: TaskStatus | 'running';
  action: string;
  services: string[];
  intents: string[];
  priority: number;
  needs: { cpu: number; memoryMb: number; gpuVramMb: number };
  pool: string;
  /** Set while the task waits before dispatch. */
  waiting?: { reason: WaitReason; shortfall: string | null; position?: number; heldBy?: string };
  agent?: string;
  attempt: number;
  progress?: PlaybookProgress;
  result?: PlaybookRun['result'];
  failureClass?: FailureClass;
}
