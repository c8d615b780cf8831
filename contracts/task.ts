import { z } from 'zod';
import { ACTOR_RULE, AGENT_ID_RULE } from './commandRules';
import { stringFrom } from './stringRule';
import { Action } from './statuses';

export const ServiceName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a lower-case service name (letters, digits, dashes)')
  .meta({ id: 'ServiceName', example: 'kuma' });

export const TaskId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'expected 1-128 letters, digits, dot, dash, colon or underscore')
  .meta({ id: 'TaskId', example: 'deploy-kuma-2026-11-26' });

export const AgentId = stringFrom(AGENT_ID_RULE).meta({ id: 'AgentId', example: 'vm-1' });

/** Who did something, as the ledger's `actor` and an operator command's `by` keep it. */
export const Actor = stringFrom(ACTOR_RULE);

/** A playbook is named by its path inside the playbooks folder; nothing outside it can run. */
export const PlaybookPath = z
  .string()
  .min(1)
  .refine((p) => isInsideFolder(p), 'expected a relative path inside the playbooks folder')
  .refine((p) => /\.ya?ml$/.test(p), 'expected a .yml or .yaml file')
  .meta({ example: 'ping.yml' });

/**
 * Whether a relative path stays inside the folder it is relative to. Written out rather than with
 * node:path, so that workflow code can run the same rule.
 */
export function isInsideFolder(relative: string): boolean {
  if (relative.includes('\0')) return false;
  const slashed = relative.replace(/\\/g, '/');
  if (slashed.startsWith('/')) return false;
  let depth = 0;
  for (const part of slashed.split('/')) {
    if (part === '..') depth -= 1;
    else if (part !== '.' && part !== '') depth += 1;
    if (depth < 0) return false;
  }
  return true;
}

const VarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an Ansible variable name');

/** What a task needs of an agent; admission reserves it there until the task ends. */
export const Requirements = z
  .strictObject({
    cpu: z.number().positive().max(1024).default(0.1).meta({ description: 'CPU cores the task needs.' }),
    memoryMb: z.number().int().min(0).max(4_194_304).default(64),
    gpuVramMb: z.number().int().min(0).max(4_194_304).default(0),
  })
  .meta({ id: 'Requirements' });
export type Requirements = z.output<typeof Requirements>;

export const Complexity = z.enum(['low', 'medium', 'high']);

export const Plan = z
  .strictObject({
    steps: z.array(z.string().min(1).max(500)).max(200).default([]),
    estimatedDurationS: z.number().positive().max(7 * 24 * 3600).optional(),
    complexity: Complexity.optional(),
  })
  .meta({ id: 'Plan' });

export const SubmitTaskRequest = z
  .strictObject({
    taskId: TaskId.optional().meta({ description: 'Idempotency key; generated when absent.' }),
    action: Action,
    services: z
      .array(ServiceName)
      .min(1, 'expected at least one service')
      .max(32)
      .refine((list) => new Set(list).size === list.length, 'expected each service once'),
    playbook: PlaybookPath,
    inventory: z
      .string()
      .min(1)
      .max(4096)
      .refine((inv) => inv.includes(',') || isInsideFolder(inv), 'expected a host list or a path inside the playbooks folder')
      .default('localhost,')
      .meta({
      description: 'An inventory path inside the playbooks folder, or a comma-separated host list.',
    }),
    extraVars: z.record(VarName, z.unknown().meta({ description: 'Any JSON value.' })).default({}),
    secretVars: z
      .record(VarName, z.string())
      .default({})
      .meta({ description: 'Passed to the playbook; never stored in the ledger or logged.' }),
    requirements: Requirements.default({ cpu: 0.1, memoryMb: 64, gpuVramMb: 0 }),
    priority: z.number().int().min(0).max(100).default(50).meta({ description: 'Higher runs first.' }),
    plan: Plan.optional(),
    checkMode: z.boolean().default(false).meta({ description: 'Run ansible-playbook --check.' }),
    requestedBy: Actor.optional(),
  })
  .meta({ id: 'SubmitTaskRequest' });

export type SubmitTaskRequest = z.input<typeof SubmitTaskRequest>;
export type TaskSpec = z.output<typeof SubmitTaskRequest> & { taskId: string };

export const SubmitTaskResponse = z
  .object({
    taskId: TaskId,
    runId: z.string(),
    existing: z.boolean().meta({ description: 'The taskId was submitted before; this is that task.' }),
    links: z.object({ self: z.string(), audit: z.string() }),
  })
  .meta({ id: 'SubmitTaskResponse' });
export type SubmitTaskResponse = z.infer<typeof SubmitTaskResponse>;

/** Settings the submitter fixes for the task's whole life (deterministic workflow input). */
export interface TaskRuntime {
  /** The shared task queue; agents serving it are the ones admission picks from. */
  pool: string;
  heartbeatTimeoutS: number;
  /** How long a dispatched playbook may wait for its agent to pick it up. */
  scheduleToStartTimeoutS: number;
  /** Runs lost to infrastructure (agent gone, worker crash) before the task fails. */
  maxInfraAttempts: number;
}

/** What the workflow (and so Temporal's history) holds: secret variables only sealed. */
export type TaskWorkflowInput = Omit<TaskSpec, 'secretVars'> & { sealedSecrets: string | null; runtime: TaskRuntime };
