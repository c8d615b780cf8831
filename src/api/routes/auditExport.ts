import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Db } from '../../db/pool';
import { AuditQuery, toAuditFilter } from '../../ledger/auditFilters';
import { streamAuditRows } from '../../ledger/exportRows';
import { nowMicros } from '../../ledger/micros';
import { logger } from '../../logger';
import { AuditRow } from '../../../contracts';
import { CSV_COLUMNS, EXPORT_FORMATS, formatRows, type ExportFormat } from '../exportFormats';
import { problemResponse } from '../openapi';
import { parseOrThrow } from '../problem';

export type AuditExportRouterDeps = { db: Db; openapi: OpenAPIRegistry; clock?: () => number };

/** The filters of /audit without its paging: the export is every matching row. */
export const AuditExportQuery = AuditQuery.omit({ limit: true, cursor: true })
  .extend({
    format: z
      .enum(['csv', 'ndjson'])
      .optional()
      .meta({ description: 'csv or ndjson; without it the Accept header decides (text/csv or application/x-ndjson), else ndjson.' }),
  })
  .meta({ id: 'AuditExportQuery' });

const MEDIA_TYPES: Record<string, ExportFormat> = { 'application/x-ndjson': 'ndjson', 'text/csv': 'csv' };

function chosenFormat(req: Request, asked: ExportFormat | undefined): ExportFormat {
  if (asked) return asked;
  const accepted = req.accepts(Object.keys(MEDIA_TYPES));
  return accepted ? MEDIA_TYPES[accepted]! : 'ndjson';
}

/** `GET /api/v1/audit/export`: the current filter's rows as a file, streamed from a database cursor. Viewer and up (app.ts). */
export function auditExportRouter({ db, openapi, clock = Date.now }: AuditExportRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/audit/export',
    summary: 'Every ledger row matching the filters of /api/v1/audit, newest first, as CSV or NDJSON.',
    description:
      'Streamed from a database cursor, so memory stays flat however many rows match. NDJSON: one AuditRow per line, ' +
      `as /api/v1/audit answers it. CSV: a header line, then one row per line with the columns ${CSV_COLUMNS.join(', ')}; ` +
      'lists joined by spaces, objects as JSON, and a cell that starts with =, +, -, @, tab or CR prefixed with a quote ' +
      'so that no spreadsheet runs it as a formula. Needs a viewer token or higher.',
    request: { query: AuditExportQuery },
    responses: {
      200: {
        description: 'The rows, as an attachment',
        content: {
          'application/x-ndjson': { schema: AuditRow },
          'text/csv': { schema: z.string().meta({ description: 'RFC 4180 CSV with a header line' }) },
        },
      },
      400: problemResponse('Invalid query: the problem names each bad parameter'),
    },
  });
  router.get('/audit/export', async (req, res, next) => {
    const { format, ...query } = parseOrThrow(AuditExportQuery, req.query);
    const chosen = chosenFormat(req, format);
    const rows = await streamAuditRows(db, toAuditFilter(query, nowMicros(clock())));
    const fail = (err: Error) => {
      rows.destroy();
      if (!res.headersSent) return next(err);
      // The status line is gone: cutting the connection is the only way left to say the file is incomplete.
      logger.error({ error: err.message }, 'audit export broke off');
      res.destroy(err);
    };
    const body = formatRows(chosen);
    rows.once('error', fail);
    body.once('error', fail);
    // A client that goes away stops the walk, and the cursor is closed with it.
    res.once('close', () => rows.destroy());
    res.set({
      'Content-Type': EXPORT_FORMATS[chosen].contentType,
      'Content-Disposition': `attachment; filename="opsledger-audit.${EXPORT_FORMATS[chosen].extension}"`,
      'Cache-Control': 'no-store',
    });
    rows.pipe(body).pipe(res);
  });

  return router;
}
