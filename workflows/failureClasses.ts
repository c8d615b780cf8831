import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { FailureClass, PlaybookRun, Requirements } from '../contracts';

/** The failure-class rules for a playbook that ran to an end, documented in docs/failure-classes.md. */
export function runFailureClass(run: PlaybookRun, needs?: Partial<Requirements>): FailureClass | undefined {
  return classifyRun(run, needs).failureClass;
}

/**
 * Messages that name resource exhaustion, from real module errors: the kernel's errno texts
 * (ENOMEM, ENOSPC, EMFILE/ENFILE, EDQUOT, EAGAIN on fork), Python's MemoryError and its errno
 * forms, CUDA's and PyTorch's, the C++ runtime's, the shell's `Killed` for a SIGKILLed command,
 * and Ansible's own "out of memory" / fork failures.
 */
export const RESOURCE_MESSAGE_RULES: readonly { name: string; pattern: RegExp }[] = [
  { name: 'cuda_out_of_memory', pattern: /CUDA (error: )?out of memory|CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation/i },
  { name: 'out_of_memory', pattern: /\bout of memory\b|\bOOM[- ]?kill|oom-kill/i },
  { name: 'cannot_allocate_memory', pattern: /cannot allocate memory|\bENOMEM\b|\[Errno 12\]|std::bad_alloc|memory allocation failed/i },
  { name: 'python_memory_error', pattern: /(^|\n|\s)MemoryError\b/ },
  { name: 'no_space_left', pattern: /no space left on device|\bENOSPC\b|\[Errno 28\]|disk quota exceeded|\bEDQUOT\b/i },
  { name: 'too_many_open_files', pattern: /too many open files|\bEMFILE\b|\bENFILE\b|\[Errno 24\]/i },
  { name: 'cannot_fork', pattern: /fork: (retry: )?Resource temporarily unavailable|cannot fork|BlockingIOError: \[Errno 11\]/i },
];

/** The evidence a `resource_constraint` (or a failure it contributed to) keeps in `failure.resourceState`. */
export interface ResourceState {
  /** Which rule decided: a signal and peak memory, the kernel's OOM report, or a message. */
  decidedBy: ('sigkill_at_memory_limit' | 'kernel_oom' | 'resource_message')[];
  killedBySignal: { source: 'ansible-playbook' | 'task'; task?: string; host?: string; signal: string }[];
  messages: { rule: string; text: string }[];
  kernelOom?: string[];
  peakMemoryMb: number;
  requestedMemoryMb: number | null;
  /** What the agent had available when the run began. */
  availableMemoryMbAtStart: number | null;
  gpuVramMb: number | null;
  requestedGpuVramMb: number | null;
  /** Recorded, but no rule on its own: the run measured more than it asked for. */
  contributing: string[];
}

export interface RunClassification {
  failureClass: FailureClass | undefined;
  /** Set when a rule found resource evidence (or a contributing fact) on a run that did not succeed. */
  resourceState?: ResourceState;
}

const SIGKILL = 9;

const AUTHORED_FAILURES = new Set(['fail', 'assert', 'ansible.builtin.fail', 'ansible.builtin.assert', 'ansible.legacy.fail', 'ansible.legacy.assert']);

/** A module's return code that says SIGKILL: a shell's 128+9, a command's -9. */
function killedBySigkill(rc: number | null): boolean {
  return rc === 128 + SIGKILL || rc === -SIGKILL;
}

/**
 * The whole rule for a run that ended: the class, and the resource evidence to keep. A SIGKILL
 * counts as a resource failure only when the peak memory was at or above what the task asked for
 * or what the agent had available when the run began (a kill for another reason stays with its
 * other class), or when the agent's kernel logged an OOM kill while the run went on.
 */
export function classifyRun(run: PlaybookRun, needs?: Partial<Requirements>): RunClassification {
  const base = baseClass(run);
  if (run.result !== 'failed') return { failureClass: base };
  const evidence = run.evidence;
  const requestedMemoryMb = needs?.memoryMb ?? null;
  const requestedGpuVramMb = needs?.gpuVramMb ?? null;
  const peak = run.resources.peakMemoryMb;
  const killedBySignal: ResourceState['killedBySignal'] = [];
  if (evidence?.playbookSignal === 'SIGKILL') killedBySignal.push({ source: 'ansible-playbook', signal: 'SIGKILL' });
  for (const r of evidence?.failedResults ?? []) {
    if (killedBySigkill(r.rc)) killedBySignal.push({ source: 'task', task: r.task, host: r.host, signal: 'SIGKILL' });
  }
  // What fail/assert say is the playbook author's text, not an error the system met.
  const moduleResults = (evidence?.failedResults ?? []).filter((r) => !AUTHORED_FAILURES.has(r.action ?? ''));
  // Without a failing result (ansible-playbook failed before a task ran), its stderr is the message.
  const texts = (evidence?.failedResults.length ? moduleResults.flatMap((r) => [r.msg, r.stderr]) : run.keyMessages).filter((t) => t);
  const messages: ResourceState['messages'] = [];
  for (const text of texts) {
    const rule = RESOURCE_MESSAGE_RULES.find((r) => r.pattern.test(text));
    if (rule && !messages.some((m) => m.text === text)) messages.push({ rule: rule.name, text: text.slice(-500) });
  }
  const contributing: string[] = [];
  if (requestedMemoryMb !== null && requestedMemoryMb > 0 && peak > requestedMemoryMb) {
    contributing.push(`peak memory ${peak} MB exceeded the ${requestedMemoryMb} MB asked for`);
  }
  if (requestedGpuVramMb !== null && run.resources.gpuVramMb !== null && run.resources.gpuVramMb > requestedGpuVramMb) {
    contributing.push(`peak VRAM ${run.resources.gpuVramMb} MB exceeded the ${requestedGpuVramMb} MB asked for`);
  }
  const available = evidence?.availableMemoryMbAtStart ?? null;
  const atMemoryLimit = (requestedMemoryMb !== null && peak >= requestedMemoryMb) || (available !== null && peak >= available);
  const decidedBy: ResourceState['decidedBy'] = [];
  if (killedBySignal.length > 0 && atMemoryLimit) decidedBy.push('sigkill_at_memory_limit');
  // The kernel log is the agent's, not the run's: an OOM kill in it speaks for a run that was killed.
  if (killedBySignal.length > 0 && (evidence?.kernelOom ?? []).length > 0) decidedBy.push('kernel_oom');
  if (messages.length > 0) decidedBy.push('resource_message');
  const found = decidedBy.length > 0 || contributing.length > 0 || killedBySignal.length > 0;
  const resourceState: ResourceState | undefined = found
    ? {
        decidedBy,
        killedBySignal,
        messages,
        ...(evidence?.kernelOom?.length ? { kernelOom: evidence.kernelOom } : {}),
        peakMemoryMb: peak,
        requestedMemoryMb,
        availableMemoryMbAtStart: available,
        gpuVramMb: run.resources.gpuVramMb,
        requestedGpuVramMb,
        contributing,
      }
    : undefined;
  // A run whose hosts were all unreachable stays infrastructure (retried elsewhere), evidence kept.
  return { failureClass: decidedBy.length > 0 && base === 'application_error' ? 'resource_constraint' : base, resourceState };
}

function baseClass(run: PlaybookRun): FailureClass | undefined {
  switch (run.result) {
    case 'succeeded':
      return undefined;
    case 'timed_out':
      return 'timeout';
    case 'cancelled':
      return 'cancelled';
    case 'failed':
      return run.counts.unreachable > 0 && run.counts.failed === 0 ? 'infrastructure' : 'application_error';
  }
}

/**
 * The task's own faults, which another agent would refuse alike: a playbook that is not there, a
 * request the worker refuses (a reserved variable, a remote host list). Secrets that do not open
 * stay infrastructure: another agent may hold the key this one lacks.
 */
const TASK_FAULTS = new Set(['PlaybookNotFoundError', 'ValidationError']);

/** What kills the activity is infrastructure, unless it is the task's own fault. */
export function activityFailureClass(err: unknown): FailureClass {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type && TASK_FAULTS.has(cause.type)) return 'application_error';
  return 'infrastructure';
}

export function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
