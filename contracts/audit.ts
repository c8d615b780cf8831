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

/** A ledger row as the API answers it: with the intents inferred from its action and services. */
export const AuditRow = LedgerRow.extend({
  intents: z.array(z.string()).meta({ description: '<action>_<service>, one per service', example: ['deploy_kuma'] }),
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

export const FailureSummary = z
  .object({
    ...range,
    total: z.number().int().meta({ description: 'Failed, timed_out and cancelled rows in the range' }),
    byClass: ClassCounts,
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
