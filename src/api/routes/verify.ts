import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { Db } from '../../db/pool';
import { TooManyRequestsError } from '../../errors';
import { verifyChain } from '../../ledger/verify';
import { logger } from '../../logger';
import { LedgerVerification } from '../../../contracts';
import { clientAddress, principalOf } from '../auth';
import { jsonResponse, problemResponse } from '../openapi';

export type VerifyRouterDeps = { db: Db; openapi: OpenAPIRegistry };

/** Each run rehashes the whole ledger, so one caller gets a few a minute: plenty for a monitor or a person. */
export const VERIFY_LIMIT = 5;
const VERIFY_WINDOW_MS = 60_000;

/**
 * A broken chain is a finding, not a failed request: it is answered 200 with `ok: false`, so a
 * monitor reads one body for both outcomes and a 5xx keeps meaning the check could not run.
 * Checkpoints are not taken here: they belong outside the database, on the operator's side.
 */
export function verifyRouter({ db, openapi }: VerifyRouterDeps): Router {
  const router = Router();
  const perCaller = rateLimit({
    windowMs: VERIFY_WINDOW_MS,
    limit: VERIFY_LIMIT,
    // Per token, not per address: callers behind one proxy do not share a quota.
    keyGenerator: (req, res) => {
      const principal = principalOf(res);
      return principal ? `token:${principal.name}` : `address:${clientAddress(req)}`;
    },
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, _res, next) =>
      next(new TooManyRequestsError(`at most ${VERIFY_LIMIT} verifications a minute per caller; try again after Retry-After seconds`)),
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/verify',
    summary: 'Recompute the hash chain of the whole ledger and name the first broken row.',
    description:
      'Always 200 when the check ran: `ok: false` with `firstBroken` when the chain is broken. ' +
      'Rows removed from the tail leave the chain intact; `opsledger audit verify --checkpoint FILE` detects them.',
    responses: {
      200: jsonResponse('The verification', LedgerVerification),
      429: problemResponse(`More than ${VERIFY_LIMIT} verifications in a minute by this caller`),
    },
  });
  router.get('/audit/verify', perCaller, async (_req, res) => {
    const verification = await verifyChain(db);
    if (verification.firstBroken) {
      logger.error({ firstBroken: verification.firstBroken, rows: verification.rows }, 'ledger hash chain is broken');
    }
    res.json(verification satisfies LedgerVerification);
  });

  return router;
}
