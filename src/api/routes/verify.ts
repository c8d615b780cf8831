import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import type { Db } from '../../db/pool';
import { verifyChain } from '../../ledger/verify';
import { logger } from '../../logger';

export type VerifyRouterDeps = { db: Db; openapi: OpenAPIRegistry };

const LedgerVerification = z
  .object({
    ok: z.boolean(),
    rows: z.number().int().describe('Rows checked'),
    head: z.object({ chainSeq: z.string(), rowHash: z.string() }).nullable().describe('The newest row; null when empty'),
    firstBroken: z
      .object({ chainSeq: z.string(), taskId: z.string(), seq: z.number().int(), reason: z.string() })
      .optional()
      .describe('The first row whose hash, link or sequence is wrong; absent when ok'),
    ms: z.number().describe('Time the verification took'),
  })
  .meta({ id: 'LedgerVerification' });

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
      200: { description: 'The verification', content: { 'application/json': { schema: LedgerVerification } } },
    },
  });
  router.get('/audit/verify', async (_req, res) => {
    const verification = await verifyChain(db);
    if (verification.firstBroken) {
      logger.error({ firstBroken: verification.firstBroken, rows: verification.rows }, 'ledger hash chain is broken');
    }
    res.json(verification);
  });

  return router;
}
