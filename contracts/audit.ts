import { z } from 'zod';
import { Json } from './ledger';
import { FailureClass, TaskStatus } from './statuses';
import { TaskId } from './task';

// Null beside a named schema is a union, never `.nullable()`, which zod-to-openapi 9 renders wrongly (Json in ./ledger).

/** A ledger row as stored: its decision or outcome and its place in the hash chain. */
export const LedgerRow = z
  .object({
    id: z.string().meta({ description: 'bigint, as text' }),
    taskId: z.string(),
    runId: z.string().nullable(),
    seq: z.number().int().meta({ description: 'Position in the task’s trail, from 1' }),
    status: TaskStatus,
    action: z.string(),
    services: z.array(z.string()),
    agent: z.string().nullable(),
    actor: z.string(),
    plan: Json,
    outcome: Json,
    resourcesUsed: Json,
    failure: Json,
    failureClass: z.union([FailureClass, z.null()]),
    suggestions: Json,
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
    chainSeq: z.string().meta({ description: 'Position in the whole ledger’s hash chain; bigint, as text' }),
    prevHash: z.string(),
    rowHash: z.string(),
  })
  .meta({ id: 'LedgerRow' });
export type LedgerRow = z.infer<typeof LedgerRow>;

/**
 * How far a run was from its estimate, derived from a final row's resourcesUsed (estimatedDurationS,
 * wallTimeS, estimateSource): the estimate the workflow made before dispatch against the wall time
 * the runner measured.
 */
export const DurationVsEstimate = z
  .object({
    estimatedS: z.number().nullable().meta({ description: 'The estimate made at dispatch; null when there was none' }),
    actualS: z.number().meta({ description: 'Wall time of the playbook run' }),
    errorS: z.number().nullable().meta({ description: 'actualS - estimatedS: positive when the run took longer than estimated' }),
    ratio: z.number().nullable().meta({ description: 'actualS / estimatedS' }),
    estimateSource: z.string().nullable().meta({ description: 'Where the estimate came from: the plan, or past runs of the same intent' }),
  })
  .meta({ id: 'DurationVsEstimate' });
export type DurationVsEstimate = z.infer<typeof DurationVsEstimate>;

/** A ledger row as the API answers it: with the intents inferred from its action and services. */
export const AuditRow = LedgerRow.extend({
  intents: z.array(z.string()).meta({ description: '<action>_<service>, one per service', example: ['deploy_kuma'] }),
  duration: z
    .union([DurationVsEstimate, z.null()])
    .meta({ description: 'On final rows of a run that went to the playbook: its wall time against its estimate; null on other rows' }),
}).meta({ id: 'AuditRow' });
export type AuditRow = z.infer<typeof AuditRow>;

export const AuditPage = z
  .object({
    rows: z.array(AuditRow),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page' }),
  })
  .meta({ id: 'AuditPage' });
export type AuditPage = z.infer<typeof AuditPage>;

/** One task's whole trail, oldest first. */
export const TaskTrail = z.object({ taskId: TaskId, rows: z.array(AuditRow) }).meta({ id: 'TaskTrail' });
export type TaskTrail = z.infer<typeof TaskTrail>;

/** A range [from, to), as every aggregate echoes it back. */
const range = {
  from: z.iso.datetime().meta({ description: 'Start of the range, inclusive' }),
  to: z.iso.datetime().meta({ description: 'End of the range, exclusive' }),
};

export const StatusCounts = z
  .record(TaskStatus, z.number().int())
  .meta({ id: 'StatusCounts', description: 'Rows per status, every status listed (zero included)' });
export type StatusCounts = z.infer<typeof StatusCounts>;

export const ClassCounts = z
  .record(FailureClass, z.number().int())
  .meta({ id: 'ClassCounts', description: 'Failures per class, every class listed (zero included)' });
export type ClassCounts = z.infer<typeof ClassCounts>;

/** What a failure summary can be split by, besides its class. */
export const FAILURE_GROUPINGS = ['service', 'agent', 'action'] as const;
export const FailureGrouping = z.enum(FAILURE_GROUPINGS).meta({ id: 'FailureGrouping' });
export type FailureGrouping = z.infer<typeof FailureGrouping>;

/** The length of one step of a summary over time; steps are aligned on UTC hours and days. */
export const TIME_BUCKETS = ['hour', 'day'] as const;
export const TimeBucket = z.enum(TIME_BUCKETS).meta({ id: 'TimeBucket' });
export type TimeBucket = z.infer<typeof TimeBucket>;

const failureCounts = {
  total: z.number().int().meta({ description: 'Failed, timed_out and cancelled rows' }),
  byClass: ClassCounts,
};

export const FailureBucket = z
  .object({ ...range, ...failureCounts })
  .meta({ id: 'FailureBucket', description: 'One step of the range; the first and last are cut to the range' });
export type FailureBucket = z.infer<typeof FailureBucket>;

export const FailureGroup = z
  .object({
    key: z.string().nullable().meta({ description: 'The service, agent or action; null for failures with no agent (never dispatched)' }),
    ...failureCounts,
    series: z.array(FailureBucket).optional().meta({ description: 'This group over time, when bucket was given' }),
  })
  .meta({ id: 'FailureGroup' });
export type FailureGroup = z.infer<typeof FailureGroup>;

export const FailureSummary = z
  .object({
    ...range,
    total: z.number().int().meta({ description: 'Failed, timed_out and cancelled rows in the range' }),
    byClass: ClassCounts,
    by: FailureGrouping.optional(),
    groups: z
      .array(FailureGroup)
      .optional()
      .meta({
        description:
          'With by: one entry per service, agent or action that failed in the range, most failures first. ' +
          'A failure touching two services counts in both.',
      }),
    bucket: TimeBucket.optional(),
    series: z.array(FailureBucket).optional().meta({ description: 'With bucket: every step of the range, oldest first, empty ones included' }),
  })
  .meta({ id: 'FailureSummary' });
export type FailureSummary = z.infer<typeof FailureSummary>;

export const ServiceCounts = z
  .object({ service: z.string(), total: z.number().int(), byStatus: StatusCounts })
  .meta({ id: 'ServiceCounts' });
export type ServiceCounts = z.infer<typeof ServiceCounts>;

export const ByService = z
  .object({ ...range, services: z.array(ServiceCounts).meta({ description: 'By service name; services without rows left out' }) })
  .meta({ id: 'ByService' });
export type ByService = z.infer<typeof ByService>;

export const ServiceDetail = ServiceCounts.extend({
  ...range,
  intents: z
    .array(z.object({ intent: z.string(), count: z.number().int() }))
    .meta({ description: 'Tasks queued in the range, per intent, most frequent first' }),
  recent: z.array(AuditRow).meta({ description: 'The service’s newest rows in the range, newest first' }),
}).meta({ id: 'ServiceDetail' });
export type ServiceDetail = z.infer<typeof ServiceDetail>;

export const IntentCount = z
  .object({ intent: z.string(), action: z.string(), service: z.string(), count: z.number().int() })
  .meta({ id: 'IntentCount' });
export type IntentCount = z.infer<typeof IntentCount>;

export const IntentCounts = z
  .object({ ...range, intents: z.array(IntentCount).meta({ description: 'Most frequent first, then by intent' }) })
  .meta({ id: 'IntentCounts' });
export type IntentCounts = z.infer<typeof IntentCounts>;

export const IntentDurations = z
  .object({
    intent: z.string(),
    action: z.string(),
    service: z.string(),
    runs: z.number().int().meta({ description: 'Final rows of runs that went to the playbook (a measured wall time)' }),
    meanActualS: z.number(),
    estimated: z.number().int().meta({ description: 'Of those, the runs that had an estimate; the fields below are over them' }),
    meanEstimatedS: z.number().nullable(),
    meanErrorS: z.number().nullable().meta({ description: 'Mean of actual - estimated: positive when runs take longer than estimated' }),
    meanAbsoluteErrorS: z.number().nullable().meta({ description: 'Mean of |actual - estimated|: how far off an estimate typically is' }),
    actualOverEstimate: z.number().nullable().meta({ description: 'Their total actual seconds over their total estimated seconds' }),
    longerThanEstimated: z.number().int(),
    shorterThanEstimated: z.number().int(),
  })
  .meta({ id: 'IntentDurations' });
export type IntentDurations = z.infer<typeof IntentDurations>;

export const DurationReport = z
  .object({ ...range, intents: z.array(IntentDurations).meta({ description: 'Most runs first, then by intent' }) })
  .meta({ id: 'DurationReport', description: 'Estimated against actual duration per intent, over the runs that ended in the range' });
export type DurationReport = z.infer<typeof DurationReport>;

export const LedgerVerification = z
  .object({
    ok: z.boolean(),
    rows: z.number().int().describe('Rows checked'),
    head: z.object({ chainSeq: z.string(), rowHash: z.string() }).nullable().describe('The newest row; null when empty'),
    firstBroken: z
      .object({ chainSeq: z.string(), taskId: z.string(), seq: z.number().int(), reason: z.string() })
      .optional()
      .describe('The first row whose hash, link or sequence is wrong; absent when ok'),
    ms: z.number().describe('Time the verification took'),
  })
  .meta({ id: 'LedgerVerification' });
export type LedgerVerification = z.infer<typeof LedgerVerification>;
