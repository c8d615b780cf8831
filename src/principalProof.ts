import crypto from 'node:crypto';

/**
 * The API's word for who caused a row. Whoever can reach Temporal directly can write any
 * `principal` into a workflow's input or an Update's; only the API and the workers hold the secret
 * key, so only the API can sign one. The proof covers the task and what it was given for: the
 * submit, or one Update by its id, which Temporal keeps unique per workflow, so a proof read from
 * history vouches for nothing else.
 */
export type PrincipalClaim = { taskId: string; principal: string; act: string };

export function signPrincipal(secretKey: string, claim: PrincipalClaim): string {
  return crypto.createHmac('sha256', proofKey(secretKey)).update(message(claim)).digest('base64url');
}

export function principalVouchedFor(secretKey: string, claim: PrincipalClaim, proof: string | null): boolean {
  if (proof === null) return false;
  const expected = Buffer.from(signPrincipal(secretKey, claim));
  const given = Buffer.from(proof);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

/** A key of its own, so a proof is never also a valid MAC under the key that seals secrets. */
function proofKey(secretKey: string): Buffer {
  return crypto.createHmac('sha256', secretKey).update('opsledger principal proof v1').digest();
}

function message({ taskId, principal, act }: PrincipalClaim): string {
  return JSON.stringify([taskId, act, principal]);
}
