import { z } from 'zod';
import { parseIntent } from '../../workflows/intent';
import { FAILURE_CLASSES, TASK_STATUSES, type FailureClass, type TaskStatus } from '../../workflows/types';
import { ValidationError } from '../errors';
import { Action, ACTIONS, ServiceName, TaskId } from '../tasks/schema';

/**
 * The audit endpoints' query strings: one zod schema each (validation, types and OpenAPI), and the
 * pure steps that turn a parsed query into the filter the queries take. Times are kept as epoch
 * microseconds (bigint), PostgreSQL's own precision; a JS Date would drop the last three digits.
 */

export const MICROS_PER_MS = 1000n;
export const MICROS_PER_HOUR = 3_600_000_000n;
const MICROS_PER_MINUTE = 60_000_000n;
const MICROS_PER_DAY = 24n * MICROS_PER_HOUR;
const DEFAULT_SPAN = 7n * MICROS_PER_DAY;
// A relative time further back than this is a typo, not a query (and would leave PostgreSQL's range).
const LONGEST_RELATIVE = 100n * 366n * MICROS_PER_DAY;

/** A time as given: an instant, or a span back from the moment the request is answered. */
export type TimeRef = { instant: bigint } | { ago: bigint };

const RELATIVE = /^(\d{1,7})([mhdw])$/;
const RELATIVE_UNITS: Record<string, bigint> = {
  m: MICROS_PER_MINUTE,
  h: MICROS_PER_HOUR,
  d: MICROS_PER_DAY,
  w: 7n * MICROS_PER_DAY,
};
// A date, or a date and time with an explicit offset: a time without one would mean the server's zone.
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|([+-])(\d{2}):?(\d{2})))?$/;

export const TIME_HELP =
  'expected ISO 8601 (2026-11-20, 2026-11-20T08:00:00Z, 2026-11-20T09:00:00.123456+01:00) or a time back from now (30m, 24h, 7d, 2w)';

/** `7d`, `24h`, `30m`, `2w` or an ISO 8601 date / date-time with offset; undefined when neither. */
export function parseTimeRef(text: string): TimeRef | undefined {
  const relative = RELATIVE.exec(text);
  if (relative) {
    const ago = BigInt(relative[1]!) * RELATIVE_UNITS[relative[2]!]!;
    return ago <= LONGEST_RELATIVE ? { ago } : undefined;
  }
  const instant = parseIsoMicros(text);
  return instant === undefined ? undefined : { instant };
}

function parseIsoMicros(text: string): bigint | undefined {
  const m = ISO_8601.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((v) => Number(v ?? 0)) as [
    number, number, number, number, number, number,
  ];
  if (year < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  // setUTCFullYear rolls 2026-02-30 over into March: a date that does not exist comes back changed.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined;
  const offsetHours = Number(m[10] ?? 0);
  const offsetMinutes = Number(m[11] ?? 0);
  if (offsetHours > 23 || offsetMinutes > 59) return undefined;
  const offset = BigInt((offsetHours * 60 + offsetMinutes) * 60) * 1_000_000n * (m[9] === '-' ? -1n : 1n);
  const fraction = BigInt((m[7] ?? '').padEnd(6, '0'));
  return BigInt(date.getTime()) * MICROS_PER_MS + fraction - offset;
}

export function resolveTimeRef(ref: TimeRef, nowMicros: bigint): bigint {
  return 'instant' in ref ? ref.instant : nowMicros - ref.ago;
}

/** ISO 8601 in UTC; six fraction digits when the instant is not a whole millisecond. */
export function microsToIso(micros: bigint): string {
  const ms = floorDiv(micros, MICROS_PER_MS);
  const iso = new Date(Number(ms)).toISOString();
  const sub = micros - ms * MICROS_PER_MS;
  return sub === 0n ? iso : `${iso.slice(0, -1)}${sub.toString().padStart(3, '0')}Z`;
}

export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q;
}

export function nowMicros(nowMs: number = Date.now()): bigint {
  return BigInt(nowMs) * MICROS_PER_MS;
}

// ---------------------------------------------------------------------------------------------
// Query-string fields

const Time = z
  .string()
  .transform((text, ctx) => {
    const ref = parseTimeRef(text);
    if (!ref) {
      ctx.addIssue({ code: 'custom', message: TIME_HELP });
      return z.NEVER;
    }
    return ref;
  })
  .meta({ example: '7d' });

const From = Time.optional().meta({ description: `Inclusive lower bound. ${TIME_HELP}.`, example: '7d' });
const To = Time.optional().meta({ description: `Exclusive upper bound (default: now). ${TIME_HELP}.`, example: '1h' });

const Statuses = z
  .string()
  .transform((text) => text.split(',').map((s) => s.trim()))
  .pipe(z.array(z.enum(TASK_STATUSES)).min(1))
  .transform((list) => [...new Set(list)])
  .meta({ description: 'One status or a comma list: queued,paused,...', example: 'failed,timed_out' });

const Intent = z
  .string()
  .transform((text, ctx) => {
    const parsed = parseIntent(text);
    if (!parsed || !(ACTIONS as readonly string[]).includes(parsed.action) || !ServiceName.safeParse(parsed.service).success) {
      ctx.addIssue({ code: 'custom', message: 'expected <action>_<service>, e.g. deploy_kuma' });
      return z.NEVER;
    }
    return parsed;
  })
  .meta({ description: 'Inferred intent <action>_<service>: that action, touching that service.', example: 'deploy_kuma' });

const Changed = z
  .enum(['true', 'false'])
  .transform((value) => value === 'true')
  .meta({
    description:
      'Final rows only (succeeded, failed, cancelled, timed_out). true: outcome.counts.changed > 0. ' +
      'false: nothing changed, i.e. counts.changed is 0 or no counts were recorded (the playbook never ran). ' +
      'Other rows never match either value.',
  });

const Limit = z.coerce.number().int().min(1).max(500).default(50).meta({ description: 'Rows per page, 1-500.' });
const Cursor = z
  .string()
  .max(512)
  .optional()
  .meta({
    description:
      'nextCursor of the previous page. It holds only the position (created_at, id), not the filters: ' +
      'with other filters the next page goes on from that position under the new filters.',
  });

const FailureClassField = z.enum(FAILURE_CLASSES);
const Agent = z.string().min(1).max(200);

export const AuditQuery = z
  .strictObject({
    status: Statuses.optional(),
    service: ServiceName.optional(),
    intent: Intent.optional(),
    action: Action.optional(),
    failureClass: FailureClassField.optional(),
    agent: Agent.optional(),
    taskId: TaskId.optional(),
    changed: Changed.optional(),
    from: From,
    to: To,
    limit: Limit,
    cursor: Cursor,
  })
  .meta({ id: 'AuditQuery' });

export const FailuresQuery = z
  .strictObject({
    failureClass: FailureClassField.optional(),
    service: ServiceName.optional(),
    agent: Agent.optional(),
    action: Action.optional(),
    from: From,
    to: To,
    limit: Limit,
    cursor: Cursor,
  })
  .meta({ id: 'AuditFailuresQuery' });

const RangeFrom = Time.optional().meta({ description: `Inclusive lower bound (default: to minus 7 days). ${TIME_HELP}.` });

export const FailureSummaryQuery = z
  .strictObject({ from: RangeFrom, to: To, service: ServiceName.optional() })
  .meta({ id: 'AuditFailureSummaryQuery' });

export const RangeQuery = z.strictObject({ from: RangeFrom, to: To }).meta({ id: 'AuditRangeQuery' });

export const IntentsQuery = z
  .strictObject({ from: RangeFrom, to: To, service: ServiceName.optional(), action: Action.optional() })
  .meta({ id: 'AuditIntentsQuery' });

export const ServiceParams = z.strictObject({ service: ServiceName });

export type AuditQuery = z.output<typeof AuditQuery>;

// ---------------------------------------------------------------------------------------------
// From a parsed query to what the queries take

/** [from, to) in epoch microseconds. */
export type TimeRange = { from: bigint; to: bigint };

/** Every field narrows the rows; absent fields do not. */
export interface AuditFilter {
  statuses?: TaskStatus[];
  /** Rows whose services include each of these (service and the intent's service). */
  services?: string[];
  /** Rows with this action (action and the intent's action must agree, or nothing matches). */
  actions?: string[];
  failureClass?: FailureClass;
  agent?: string;
  taskId?: string;
  changed?: boolean;
  from?: bigint;
  to?: bigint;
}

export function toAuditFilter(query: Omit<AuditQuery, 'limit' | 'cursor'>, now: bigint): AuditFilter {
  const services = [query.service, query.intent?.service].filter((s): s is string => s !== undefined);
  const actions = [query.action, query.intent?.action].filter((a): a is string => a !== undefined);
  return {
    ...(query.status ? { statuses: query.status } : {}),
    ...(services.length > 0 ? { services: [...new Set(services)] } : {}),
    ...(actions.length > 0 ? { actions: [...new Set(actions)] } : {}),
    ...(query.failureClass ? { failureClass: query.failureClass } : {}),
    ...(query.agent !== undefined ? { agent: query.agent } : {}),
    ...(query.taskId !== undefined ? { taskId: query.taskId } : {}),
    ...(query.changed !== undefined ? { changed: query.changed } : {}),
    ...openRange(query.from, query.to, now),
  };
}

/** A range both of whose ends may be open (the row lists). */
function openRange(from: TimeRef | undefined, to: TimeRef | undefined, now: bigint): { from?: bigint; to?: bigint } {
  const range = {
    ...(from ? { from: resolveTimeRef(from, now) } : {}),
    ...(to ? { to: resolveTimeRef(to, now) } : {}),
  };
  if (range.from !== undefined && range.to !== undefined) assertOrdered(range.from, range.to);
  return range;
}

/** A closed range (the aggregates): `to` defaults to now, `from` to seven days before `to`. */
export function toTimeRange(query: { from?: TimeRef; to?: TimeRef }, now: bigint): TimeRange {
  const to = query.to ? resolveTimeRef(query.to, now) : now;
  const from = query.from ? resolveTimeRef(query.from, now) : to - DEFAULT_SPAN;
  assertOrdered(from, to);
  return { from, to };
}

function assertOrdered(from: bigint, to: bigint): void {
  if (from >= to) {
    throw new ValidationError([
      { field: 'from', message: `from (${microsToIso(from)}) must be before to (${microsToIso(to)})` },
    ]);
  }
}
