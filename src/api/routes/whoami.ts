import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { WhoAmI, type TemporalUi } from '../../../contracts';
import { principalOf, requireRole } from '../auth';
import { jsonResponse, problemResponse } from '../openapi';

export type WhoAmIRouterDeps = { openapi: OpenAPIRegistry; temporalUi?: TemporalUi };

/** The Temporal UI is an internal address: only the roles that act on tasks are told it. */
const SEES_TEMPORAL_UI = ['operator', 'admin'];

/**
 * `GET /api/v1/whoami`: the page asks which role its token has, so that it offers only what the
 * role may do. The API still decides every call; this only spares a person buttons that 403.
 */
export function whoamiRouter({ openapi, temporalUi }: WhoAmIRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/whoami',
    summary: 'The caller’s token: its name (the actor of record) and role. Needs a viewer token or higher.',
    responses: { 200: jsonResponse('The caller', WhoAmI), 401: problemResponse('No token, or an unknown one') },
  });
  router.get('/whoami', requireRole('viewer'), (_req, res) => {
    const principal = principalOf(res)!;
    const ui = temporalUi && SEES_TEMPORAL_UI.includes(principal.role) ? temporalUi : null;
    res.json(WhoAmI.parse({ name: principal.name, role: principal.role, temporalUi: ui }) satisfies WhoAmI);
  });

  return router;
}
