import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { FailureClass, PlaybookRun } from '../contracts';

/** The failure-class rules for a playbook that ran to an end, documented in docs/failure-classes.md. */
export function runFailureClass(run: PlaybookRun): FailureClass | undefined {
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
