import path from 'node:path';
import { z } from 'zod';

/** The action vocabulary; with a service it forms an intent (deploy + kuma -> deploy_kuma). */
export const ACTIONS = [
  'deploy', 'add', 'remove', 'restart', 'update', 'configure', 'backup', 'restore', 'rollback', 'check',
] as const;
export const Action = z.enum(ACTIONS).meta({ id: 'Action', description: 'What the task does to its services.' });

export const ServiceName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a lower-case service name (letters, digits, dashes)')
  .meta({ id: 'ServiceName', example: 'kuma' });

export const TaskId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'expected 1-128 letters, digits, dot, dash, colon or underscore')
  .meta({ id: 'TaskId', example: 'deploy-kuma-2026-11-26' });

/** A playbook is named by its path inside the playbooks folder; nothing outside it can run. */
export const PlaybookPath = z
  .string()
  .min(1)
  .refine((p) => isInsideFolder(p), 'expected a relative path inside the playbooks folder')
  .refine((p) => /\.ya?ml$/.test(p), 'expected a .yml or .yaml file')
  .meta({ example: 'ping.yml' });

export function isInsideFolder(relative: string): boolean {
  if (path.isAbsolute(relative) || relative.includes('\0')) return false;
  const normalised = path.posix.normalize(relative.replace(/\\/g, '/'));
  return normalised !== '..' && !normalised.startsWith('../') && !normalised.startsWith('/');
}

const VarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an Ansible variable name');

export const Requirements = z
  .strictObject({
    cpu: z.number().positive().max(1024).default(0.1).meta({ description: 'CPU cores the task needs.' }),
    memoryMb: z.number().int().min(0).max(4_194_304).default(64),
    gpuVramMb: z.number().int().min(0).max(4_194_304).default(0),
  })
  .meta({ id: 'Requirements' });

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
    requestedBy: z.string().min(1).max(200).optional(),
  })
  .meta({ id: 'SubmitTaskRequest' });

export type SubmitTaskRequest = z.input<typeof SubmitTaskRequest>;
export type TaskSpec = z.output<typeof SubmitTaskRequest> & { taskId: string };
