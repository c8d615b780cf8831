import { Transform } from 'node:stream';
import type { AuditRow } from '../../contracts';

/**
 * The export's two formats, each a stream of text from a stream of AuditRow objects. NDJSON is
 * one AuditRow as /audit answers it per line; CSV has one column per field, with the structured
 * ones (plan, outcome, resources, failure, suggestions) as JSON text.
 */

export const EXPORT_FORMATS = {
  csv: { contentType: 'text/csv; charset=utf-8', extension: 'csv' },
  ndjson: { contentType: 'application/x-ndjson', extension: 'ndjson' },
} as const;
export type ExportFormat = keyof typeof EXPORT_FORMATS;

export const CSV_COLUMNS = [
  'id', 'taskId', 'runId', 'seq', 'status', 'action', 'services', 'intents', 'agent', 'actor', 'failureClass',
  'createdAt', 'updatedAt', 'chainSeq', 'prevHash', 'rowHash', 'plan', 'outcome', 'resourcesUsed', 'failure', 'suggestions',
] as const satisfies readonly (keyof AuditRow)[];

// A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV cell: lists joined by spaces, objects as JSON, a would-be formula defused with a leading quote. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = Array.isArray(value) && value.every((v) => typeof v === 'string') ? value.join(' ') : typeof value === 'object' ? JSON.stringify(value) : String(value);
  const safe = FORMULA_START.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function formatRows(format: ExportFormat): Transform {
  let first = true;
  return new Transform({
    writableObjectMode: true,
    transform(row: AuditRow, _encoding, done) {
      if (format === 'ndjson') return done(null, `${JSON.stringify(row)}\n`);
      const header = first ? `${CSV_COLUMNS.join(',')}\r\n` : '';
      first = false;
      done(null, `${header}${CSV_COLUMNS.map((column) => csvCell(row[column])).join(',')}\r\n`);
    },
    flush(done) {
      // An export with no rows is still a CSV file with its header.
      done(null, format === 'csv' && first ? `${CSV_COLUMNS.join(',')}\r\n` : '');
    },
  });
}
