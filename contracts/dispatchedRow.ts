import type { CapacityGrant } from './admission';
import type { LedgerEntry } from './ledger';

/**
 * What a `dispatched` row says about where the task went and why: the workflow writes it, and so
 * does the first step that admits a task at once, so both must build it the same way.
 */
export function dispatchedFields(grant: CapacityGrant, attempt: number, previousAttemptLost?: string): Pick<LedgerEntry, 'agent' | 'outcome'> {
  return {
    agent: grant.agentId,
    outcome: {
      attempt,
      loadPctAtDispatch: grant.loadPctAtDispatch,
      overridden: grant.overridden,
      ...(previousAttemptLost ? { previousAttemptLost } : {}),
    },
  };
}
