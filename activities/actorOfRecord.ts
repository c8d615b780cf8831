import type { Json, LedgerEntry } from '../contracts';
import { THROUGH_TEMPORAL } from '../contracts/commandRules';
import { principalVouchedFor } from '../src/principalProof';

/**
 * The row as the ledger keeps it: a principal the workflow was told of stays the actor only when
 * the API's proof vouches for it (for this task, and this submit or Update). Anything else came
 * straight through Temporal, and is recorded so, with the name it claimed kept beside it.
 */
export function rowOfRecord({ actorClaim, ...row }: LedgerEntry, secretKey: string | undefined): LedgerEntry {
  if (!actorClaim) return row;
  const claim = { taskId: row.taskId, principal: row.actor, act: actorClaim.act };
  if (secretKey !== undefined && principalVouchedFor(secretKey, claim, actorClaim.proof)) return row;
  return { ...row, actor: THROUGH_TEMPORAL, outcome: { ...objectOf(row.outcome), unvouchedPrincipal: row.actor } };
}

function objectOf(outcome: Json | undefined): { [key: string]: Json } {
  if (outcome === undefined || outcome === null) return {};
  return typeof outcome === 'object' && !Array.isArray(outcome) ? outcome : { value: outcome };
}
