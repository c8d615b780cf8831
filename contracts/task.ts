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

/**
 * Extra vars override every other source, so a submitter who could set these would choose the
 * host, user, interpreter or privilege of the run, or replace what Ansible itself fills in. They
 * belong in an inventory inside the playbooks folder, which an administrator writes.
 * Names: Ansible's connection, become and interpreter variables (all `ansible_*`), its internal
 * ones (`_ansible*`), and its special (magic) variables outside that prefix.
 */
const RESERVED_VAR_PREFIXES = ['ansible_', '_ansible'];
const RESERVED_VARS = new Set([
  'environment',
  'group_names',
  'groups',
  'hostvars',
  'inventory_dir',
  'inventory_file',
  'inventory_hostname',
  'inventory_hostname_short',
  'omit',
  'play_hosts',
  'playbook_dir',
  'role_name',
  'role_names',
  'role_path',
  'role_uuid',
  'vars',
]);

/** Case-insensitive, so that no spelling slips past a plugin that normalises names. */
export function isReservedVarName(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED_VARS.has(lower) || RESERVED_VAR_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

export const RESERVED_VAR_MESSAGE =
  'reserved: it steers Ansible (connection, interpreter, privilege) or is one of its special variables; set it in an inventory in the playbooks folder';

const VarName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an Ansible variable name')
  .refine((name) => !isReservedVarName(name), RESERVED_VAR_MESSAGE);

/** Variables by name; a bad name is reported as the field itself, `extraVars.ansible_host`, with why. */
function variables<V extends z.ZodType>(value: V) {
  return z.record(VarName, value, {
    error: (issue) => (issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined),
  });
}

/**
 * The hosts a comma-separated host list may name. A host list bypasses the playbooks folder, so
 * only this machine; any other host comes from an inventory file there.
 */
const HOST_LIST_HOSTS: readonly string[] = ['localhost', '127.0.0.1'];

export function isLocalHostList(inventory: string): boolean {
  const hosts = inventory
    .split(',')
    .map((host) => host.trim())
    .filter(Boolean);
  return hosts.length > 0 && hosts.every((host) => HOST_LIST_HOSTS.includes(host));
}

/** As ansible-playbook reads `-i`: a value with a comma is a host list, anything else a path. */
function isAllowedInventory(inventory: string): boolean {
  return inventory.includes(',') ? isLocalHostList(inventory) : isInsideFolder(inventory);
}

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
      .refine(isAllowedInventory, 'expected an inventory path inside the playbooks folder, or a host list of localhost or 127.0.0.1 ("localhost,")')
      .default('localhost,')
      .meta({
        description: 'An inventory path inside the playbooks folder, or a comma-separated host list naming only localhost or 127.0.0.1.',
      }),
    extraVars: variables(z.unknown().meta({ description: 'Any JSON value.' }))
      .default({})
      .meta({ description: 'Passed to the playbook as text: never templated. Reserved Ansible names (`ansible_*`, `hostvars`, ...) are refused.' }),
    secretVars: variables(z.string())
      .default({})
      .meta({ description: 'Passed to the playbook as text, never templated; never stored in the ledger or logged.' }),
    requirements: Requirements.default({ cpu: 0.1, memoryMb: 64, gpuVramMb: 0 }),
    priority: z.number().int().min(0).max(100).default(50).meta({ description: 'Higher runs first.' }),
    plan: Plan.optional(),
    checkMode: z.boolean().default(false).meta({ description: 'Run ansible-playbook --check.' }),
    maxWaitS: z
      .number()
      .int()
      .positive()
      .max(30 * 24 * 3600)
      .optional()
      .meta({ description: 'Seconds the task may wait for dispatch before it fails with `resource_constraint`; OPSLEDGER_MAX_WAIT_S when absent.' }),
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
  /** How long a task without its own `maxWaitS` may wait for dispatch; absent (older tasks): no limit. */
  maxWaitS?: number;
}

/**
 * What the workflow (and so Temporal's history) holds: secret variables only sealed, and the
 * principal the API authenticated for the submit (the `queued` row's actor) with the API's proof
 * of it; a workflow started straight through Temporal has neither.
 */
export type TaskWorkflowInput = Omit<TaskSpec, 'secretVars'> & {
  sealedSecrets: string | null;
  runtime: TaskRuntime;
  principal?: string;
  principalProof?: string;
};
