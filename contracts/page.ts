import { z } from 'zod';
import { FailureClass, TaskStatus } from './statuses';

/** What the operator's page reads beyond the ledger rows: task lines, and who the token is. */

// Null beside a named schema is a union, never `.nullable()` (see contracts/audit.ts).

/** One task as it stands: its latest ledger row, with what its first row adds. */
export const TaskLine = z
  .object({
    taskId: z.string(),
    runId: z.string().nullable(),
    status: TaskStatus.meta({ description: 'The status of the task’s latest row' }),
    action: z.string(),
    services: z.array(z.string()),
    intents: z.array(z.string()).meta({ description: '<action>_<service>, one per service', example: ['deploy_kuma'] }),
    agent: z.string().nullable().meta({ description: 'The agent of the latest row' }),
    actor: z.string().meta({ description: 'The actor of record of the latest row' }),
    submittedBy: z.string().meta({ description: 'The actor of record of the task’s first row' }),
    failureClass: z.union([FailureClass, z.null()]),
    latestSeq: z.number().int().meta({ description: 'The latest row’s seq: its place in the trail of its run' }),
    firstAt: z.iso.datetime().meta({ description: 'When the task’s first row was appended' }),
    lastAt: z.iso.datetime().meta({ description: 'When its latest row was appended' }),
    elapsedS: z.number().meta({ description: 'lastAt minus firstAt, in seconds' }),
    wallTimeS: z.number().nullable().meta({ description: 'resourcesUsed.wallTimeS of the latest row: the playbook’s run time' }),
    estimatedDurationS: z.number().nullable().meta({ description: 'resourcesUsed.estimatedDurationS of the latest row' }),
  })
  .meta({ id: 'TaskLine' });
export type TaskLine = z.infer<typeof TaskLine>;

export const TaskLinesPage = z
  .object({
    tasks: z.array(TaskLine),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page' }),
  })
  .meta({ id: 'TaskLinesPage' });
export type TaskLinesPage = z.infer<typeof TaskLinesPage>;

/** Where a browser reaches the Temporal Web UI, and the namespace of opsledger's workflows. */
export const TemporalUi = z
  .object({ url: z.string().meta({ example: 'http://localhost:8233' }), namespace: z.string() })
  .meta({ id: 'TemporalUi' });
export type TemporalUi = z.infer<typeof TemporalUi>;

/** The caller as its token authenticated it: the page offers only what this role may do. */
export const WhoAmI = z
  .object({
    name: z.string().meta({ description: 'The token’s name in OPSLEDGER_TOKENS: the actor of record of what it does' }),
    role: z.enum(['viewer', 'operator', 'orchestrator', 'admin']),
    temporalUi: z
      .union([TemporalUi, z.null()])
      .meta({ description: 'For operators and admins, where the API was told the Temporal Web UI is (TEMPORAL_UI_URL); null for other roles' }),
  })
  .meta({ id: 'WhoAmI' });
export type WhoAmI = z.infer<typeof WhoAmI>;
