import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { WhoAmI } from '../../../contracts';
import { principalOf, requireRole } from '../auth';
import { jsonResponse, problemResponse } from '../openapi';

export type WhoAmIRouterDeps = { openapi: OpenAPIRegistry };

/**
 * `GET /api/v1/whoami`: the page asks which role its token has, so that it offers only what the
 * role may do. The API still decides every call; this only spares a person buttons that 403.
 */
export function whoamiRouter({ openapi }: WhoAmIRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/whoami',
    summary: 'The caller’s token: its name (the actor of record) and role. Needs a viewer token or higher.',
    responses: { 200: jsonResponse('The caller', WhoAmI), 401: problemResponse('No token, or an unknown one') },
  });
  router.get('/whoami', requireRole('viewer'), (_req, res) => {
    const principal = principalOf(res)!;
    res.json(WhoAmI.parse({ name: principal.name, role: principal.role }) satisfies WhoAmI);
  });

  return router;
}
