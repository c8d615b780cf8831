import { z } from 'zod';
import {
  Action,
  ACTIONS,
  FAILURE_CLASSES,
  type FailureClass,
  FailureGrouping,
  parseIntent,
  ServiceName,
  TASK_STATUSES,
  TaskId,
  type TaskStatus,
  TimeBucket,
} from '../../contracts';
import { ValidationError } from '../errors';
import { MICROS_PER_DAY, microsToIso, parseTimeRef, resolveTimeRef, TIME_HELP, type TimeRef } from './micros';

const DEFAULT_SPAN = 7n * MICROS_PER_DAY;

/**
 * The audit endpoints' query strings: one zod schema each (validation, types and OpenAPI), and the
 * pure steps that turn a parsed query into the filter the queries take. Times are epoch
 * microseconds (micros.ts).
 */

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
  .strictObject({
    from: RangeFrom,
    to: To,
    service: ServiceName.optional(),
    agent: Agent.optional(),
    action: Action.optional(),
    by: FailureGrouping.optional().meta({ description: 'Also split the failures by service, agent or action (groups)' }),
    bucket: TimeBucket.optional().meta({ description: 'Also count them per UTC hour or day of the range (series)' }),
  })
  .meta({ id: 'AuditFailureSummaryQuery' });

export type FailureSummaryQuery = z.output<typeof FailureSummaryQuery>;

export const RangeQuery = z.strictObject({ from: RangeFrom, to: To }).meta({ id: 'AuditRangeQuery' });

/** A range narrowed to one service and/or one action: an intent's parts. */
const rangeOfIntent = { from: RangeFrom, to: To, service: ServiceName.optional(), action: Action.optional() };

export const IntentsQuery = z.strictObject(rangeOfIntent).meta({ id: 'AuditIntentsQuery' });

export const DurationsQuery = z.strictObject(rangeOfIntent).meta({ id: 'AuditDurationsQuery' });

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
