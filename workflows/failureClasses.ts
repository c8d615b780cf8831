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

/** A playbook that cannot be found is the task's fault; anything else that kills the activity is infrastructure. */
export function activityFailureClass(err: unknown): FailureClass {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type === 'PlaybookNotFoundError') return 'application_error';
  return 'infrastructure';
}

export function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
