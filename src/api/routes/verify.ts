import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import type { Db } from '../../db/pool';
import { verifyChain } from '../../ledger/verify';
import { logger } from '../../logger';
import { LedgerVerification } from '../../../contracts';
import { jsonResponse } from '../openapi';

export type VerifyRouterDeps = { db: Db; openapi: OpenAPIRegistry };

/**
 * A broken chain is a finding, not a failed request: it is answered 200 with `ok: false`, so a
 * monitor reads one body for both outcomes and a 5xx keeps meaning the check could not run.
 * Checkpoints are not taken here: they belong outside the database, on the operator's side.
 */
export function verifyRouter({ db, openapi }: VerifyRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/verify',
    summary: 'Recompute the hash chain of the whole ledger and name the first broken row.',
    description:
      'Always 200 when the check ran: `ok: false` with `firstBroken` when the chain is broken. ' +
      'Rows removed from the tail leave the chain intact; `opsledger audit verify --checkpoint FILE` detects them.',
    responses: {
      200: jsonResponse('The verification', LedgerVerification),
    },
  });
  router.get('/audit/verify', async (_req, res) => {
    const verification = await verifyChain(db);
    if (verification.firstBroken) {
      logger.error({ firstBroken: verification.firstBroken, rows: verification.rows }, 'ledger hash chain is broken');
    }
    res.json(verification satisfies LedgerVerification);
  });

  return router;
}
