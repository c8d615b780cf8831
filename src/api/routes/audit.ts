import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import { NotFoundError } from '../../errors';
import type { LedgerRepository } from '../../ledger/repository';
import { TaskId } from '../../tasks/schema';
import { problemResponse } from '../openapi';
import { parseOrThrow } from '../problem';

export type AuditRouterDeps = { ledger: LedgerRepository; openapi: OpenAPIRegistry };

const TaskIdParams = z.object({ taskId: TaskId });

export function auditRouter({ ledger, openapi }: AuditRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/tasks/{taskId}',
    summary: 'The whole ledger trail of one task, oldest first.',
    request: { params: TaskIdParams },
    responses: { 200: { description: 'Ledger rows' }, 404: problemResponse('No rows for this task') },
  });
  router.get('/audit/tasks/:taskId', async (req, res) => {
    const { taskId } = parseOrThrow(TaskIdParams, req.params);
    const rows = await ledger.trail(taskId);
    if (rows.length === 0) throw new NotFoundError(`no ledger rows for task ${taskId}`);
    res.json({ taskId, rows });
  });

  return router;
}
