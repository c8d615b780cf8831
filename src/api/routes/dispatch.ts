import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import type { AdmissionRepository } from '../../admission/repository';
import { DispatchState, PauseQueue } from '../../../contracts';
import { requireRole } from '../auth';
import { jsonResponse } from '../openapi';
import { parseOrThrow } from '../problem';

export type DispatchRouterDeps = { admission: AdmissionRepository; openapi: OpenAPIRegistry };

const HoldBody = z.strictObject({ by: z.string().min(1).max(200).optional() }).meta({ id: 'DispatchHold' });
const QueueQuery = z.strictObject({ pool: z.string().min(1).max(200).optional() });

export function dispatchRouter({ admission, openapi }: DispatchRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/pause-queue',
    summary: 'Tasks waiting before dispatch, in dispatch order (priority, then age), with why each waits.',
    request: { query: QueueQuery },
    responses: { 200: jsonResponse('Whether dispatch is held, and the waiting tasks', PauseQueue) },
  });
  router.get('/pause-queue', requireRole('viewer'), async (req, res) => {
    const { pool } = parseOrThrow(QueueQuery, req.query);
    res.json({ dispatch: await admission.dispatchHold(), tasks: await admission.queue(pool) } satisfies PauseQueue);
  });

  for (const held of [true, false]) {
    const name = held ? 'hold' : 'release';
    openapi.registerPath({
      method: 'post',
      path: `/api/v1/dispatch/${name}`,
      summary: held
        ? 'Hold all dispatch (maintenance): new and waiting tasks wait until released.'
        : 'Release a dispatch hold: waiting tasks that fit resume in order.',
      request: { body: { content: { 'application/json': { schema: HoldBody } } } },
      responses: { 200: jsonResponse('Dispatch state', DispatchState) },
    });
    router.post(`/dispatch/${name}`, requireRole('operator'), async (req, res) => {
      const body = parseOrThrow(HoldBody, req.body ?? {});
      await admission.setDispatchHold(held, holder(res.locals.principal?.name ?? 'api', body.by));
      res.json((await admission.dispatchHold()) satisfies DispatchState);
    });
  }

  return router;
}

/** The token's principal holds dispatch; a `by` naming someone else is kept beside it as the caller's note. */
function holder(principal: string, by: string | undefined): string {
  return by === undefined || by === principal ? principal : `${principal} (for ${by})`;
}
