import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router } from 'express';
import { z } from 'zod';
import type { Db } from '../../db/pool';
import { NotFoundError } from '../../errors';
import {
  AuditQuery,
  DurationsQuery,
  FailureSummaryQuery,
  FailuresQuery,
  IntentsQuery,
  RangeQuery,
  ServiceParams,
  toAuditFilter,
  toTimeRange,
} from '../../ledger/auditFilters';
import { nowMicros } from '../../ledger/micros';
import { createAuditQueries } from '../../ledger/auditQueries';
import { toAuditRow, type RowsPage } from '../../ledger/auditRows';
import { decodeCursor, encodeCursor } from '../../ledger/cursor';
import type { LedgerRepository } from '../../ledger/repository';
import {
  AuditPage,
  ByService,
  DurationReport,
  FailureSummary,
  IntentCounts,
  ServiceDetail,
  TaskId,
  TaskTrail,
} from '../../../contracts';
import { jsonResponse, problemResponse } from '../openapi';
import { parseOrThrow } from '../problem';

export type AuditRouterDeps = {
  db: Db;
  ledger: LedgerRepository;
  openapi: OpenAPIRegistry;
  /** Signs page cursors; the same on every API process that serves the same clients. */
  cursorSecret: string;
  /** Epoch milliseconds that relative times (`7d`) and default ranges count back from. */
  clock?: () => number;
};

const TaskIdParams = z.object({ taskId: TaskId });

const invalid = problemResponse('Invalid query: the problem names each bad parameter');

export function auditRouter({ db, ledger, openapi, cursorSecret, clock = Date.now }: AuditRouterDeps): Router {
  const router = Router();
  const audit = createAuditQueries(db);
  const now = () => nowMicros(clock());
  const page = (query: { limit: number; cursor?: string }) => ({
    limit: query.limit,
    ...(query.cursor === undefined ? {} : { after: decodeCursor(query.cursor, cursorSecret) }),
  });
  const pageBody = ({ rows, next }: RowsPage): AuditPage => ({
    rows,
    nextCursor: next === null ? null : encodeCursor(next, cursorSecret),
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit',
    summary: 'Ledger rows matching every given filter, newest first, a page at a time.',
    description:
      'Ordered by (createdAt, id) descending; pass nextCursor as cursor for the next page (keyset: rows ' +
      'appended meanwhile never shift a page). Each row carries its inferred intents.',
    request: { query: AuditQuery },
    responses: { 200: jsonResponse('A page of rows', AuditPage), 400: invalid },
  });
  router.get('/audit', async (req, res) => {
    const query = parseOrThrow(AuditQuery, req.query);
    res.json(pageBody(await audit.list(toAuditFilter(query, now()), page(query))));
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/failures',
    summary: 'Failures (failed, timed_out and cancelled rows), newest first, a page at a time.',
    request: { query: FailuresQuery },
    responses: { 200: jsonResponse('A page of failure rows', AuditPage), 400: invalid },
  });
  router.get('/audit/failures', async (req, res) => {
    const query = parseOrThrow(FailuresQuery, req.query);
    res.json(pageBody(await audit.failures(toAuditFilter(query, now()), page(query))));
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/failures/summary',
    summary: 'Failures (failed, timed_out and cancelled rows) in a range by failure class; split by service, agent or action, and over time.',
    description:
      'Range [from, to): to defaults to now, from to seven days before to. Exact at any range. ' +
      'by=service|agent|action adds groups, each with its own counts by class; bucket=hour|day adds a series ' +
      'over the range (UTC steps, every step listed); with both, each group has its own series. ' +
      'service, agent and action narrow the failures counted.',
    request: { query: FailureSummaryQuery },
    responses: { 200: jsonResponse('Failures by class, every class listed', FailureSummary), 400: invalid },
  });
  router.get('/audit/failures/summary', async (req, res) => {
    const query = parseOrThrow(FailureSummaryQuery, req.query);
    const range = toTimeRange(query, now());
    const { by, bucket, service, agent, action } = query;
    // The running totals answer the plain summary at any range in constant time; a split counts rows.
    const summary =
      by === undefined && bucket === undefined && agent === undefined && action === undefined
        ? await audit.failureSummary(range, service)
        : await audit.failureBreakdown(range, { by, bucket, narrow: { service, agent, action } });
    res.json(summary satisfies FailureSummary);
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/by-service',
    summary: 'Rows in a range per service and status.',
    description:
      'Range [from, to): to defaults to now, from to seven days before to. A row touching two services ' +
      'counts for both; services without rows in the range are left out.',
    request: { query: RangeQuery },
    responses: { 200: jsonResponse('Rows per service and status', ByService), 400: invalid },
  });
  router.get('/audit/by-service', async (req, res) => {
    const query = parseOrThrow(RangeQuery, req.query);
    res.json((await audit.byService(toTimeRange(query, now()))) satisfies ByService);
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/by-service/{service}',
    summary: 'One service over a range: rows per status, intents, and its 20 newest rows in the range.',
    description: 'Intents count tasks queued in the range, as /audit/intents does.',
    request: { params: ServiceParams, query: RangeQuery },
    responses: {
      200: jsonResponse('The service over the range', ServiceDetail),
      400: invalid,
      404: problemResponse('The ledger has no row touching this service'),
    },
  });
  router.get('/audit/by-service/:service', async (req, res) => {
    const { service } = parseOrThrow(ServiceParams, req.params);
    const query = parseOrThrow(RangeQuery, req.query);
    const detail = await audit.serviceDetail(service, toTimeRange(query, now()));
    if (!detail) throw new NotFoundError(`no ledger rows touch service ${service}`);
    res.json(detail satisfies ServiceDetail);
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/intents',
    summary: 'Inferred intents (<action>_<service>) of the tasks queued in a range, most frequent first.',
    description:
      'count is the number of tasks whose `queued` row (their first row, one per task) falls in [from, to); ' +
      'a task touching two services has two intents. to defaults to now, from to seven days before to. ' +
      'Sorted by count descending, then intent.',
    request: { query: IntentsQuery },
    responses: { 200: jsonResponse('Intents with their task counts', IntentCounts), 400: invalid },
  });
  router.get('/audit/intents', async (req, res) => {
    const query = parseOrThrow(IntentsQuery, req.query);
    res.json((await audit.intents(toTimeRange(query, now()), { service: query.service, action: query.action })) satisfies IntentCounts);
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/durations',
    summary: 'Estimated against actual duration per intent, over the runs that ended in a range.',
    description:
      'A run is a final row with a measured wall time (succeeded or failed after the playbook ran). ' +
      'Each intent lists its runs, how many had an estimate, and the medians of the actual and estimated ' +
      'seconds, of their difference and of their ratio. to defaults to now, from to seven days before to. ' +
      'Each row of /audit, /audit/failures and a trail carries the same comparison for its own run (duration).',
    request: { query: DurationsQuery },
    responses: { 200: jsonResponse('Durations per intent, most runs first', DurationReport), 400: invalid },
  });
  router.get('/audit/durations', async (req, res) => {
    const query = parseOrThrow(DurationsQuery, req.query);
    res.json((await audit.durations(toTimeRange(query, now()), { service: query.service, action: query.action })) satisfies DurationReport);
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/tasks/{taskId}',
    summary: 'The whole ledger trail of one task, oldest first.',
    request: { params: TaskIdParams },
    responses: { 200: jsonResponse('The task’s rows, oldest first', TaskTrail), 404: problemResponse('No rows for this task') },
  });
  router.get('/audit/tasks/:taskId', async (req, res) => {
    const { taskId } = parseOrThrow(TaskIdParams, req.params);
    const rows = await ledger.trail(taskId);
    if (rows.length === 0) throw new NotFoundError(`no ledger rows for task ${taskId}`);
    res.json({ taskId, rows: rows.map(toAuditRow) } satisfies TaskTrail);
  });

  return router;
}
