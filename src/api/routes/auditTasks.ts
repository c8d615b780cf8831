import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import type { Db } from '../../db/pool';
import { AuditQuery, toAuditFilter } from '../../ledger/auditFilters';
import { decodeCursor, encodeCursor } from '../../ledger/cursor';
import { nowMicros } from '../../ledger/micros';
import { createTaskLineQueries } from '../../ledger/taskLines';
import { TaskLinesPage } from '../../../contracts';
import { jsonResponse, problemResponse } from '../openapi';
import { parseOrThrow } from '../problem';

export type AuditTasksRouterDeps = {
  db: Db;
  openapi: OpenAPIRegistry;
  /** Signs page cursors, as for /audit. */
  cursorSecret: string;
  clock?: () => number;
};

/** `GET /api/v1/audit/tasks`: one line per task, the tasks-first view of the ledger. Viewer and up (app.ts). */
export function auditTasksRouter({ db, openapi, cursorSecret, clock = Date.now }: AuditTasksRouterDeps): Router {
  const router = Router();
  const taskLines = createTaskLineQueries(db);

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/tasks',
    summary: 'One line per task whose latest ledger row matches every given filter, newest first, a page at a time.',
    description:
      'The filters of /api/v1/audit apply to each task’s latest row: status=paused lists the tasks waiting now, ' +
      'service=kuma&from=7d the kuma tasks whose latest decision fell in the past week. Ordered by that row’s ' +
      '(createdAt, id) descending; pass nextCursor as cursor for the next page. Needs a viewer token or higher.',
    request: { query: AuditQuery },
    responses: {
      200: jsonResponse('A page of task lines', TaskLinesPage),
      400: problemResponse('Invalid query: the problem names each bad parameter'),
    },
  });
  router.get('/audit/tasks', async (req, res) => {
    const query = parseOrThrow(AuditQuery, req.query);
    const { tasks, next } = await taskLines.list(toAuditFilter(query, nowMicros(clock())), {
      limit: query.limit,
      ...(query.cursor === undefined ? {} : { after: decodeCursor(query.cursor, cursorSecret) }),
    });
    res.json({ tasks, nextCursor: next === null ? null : encodeCursor(next, cursorSecret) } satisfies TaskLinesPage);
  });

  return router;
}
