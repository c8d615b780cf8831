import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { TokensSchema } from './api/auth';
import { projectRoot } from './paths';

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\/\S+$/, 'expected a postgres:// or postgresql:// URL');

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port, e.g. localhost:7233');

const port = z.coerce
  .number({ error: 'expected a port number' })
  .int('expected a port number')
  .min(1, 'expected a port from 1 to 65535')
  .max(65535, 'expected a port from 1 to 65535');

const positiveInt = z.coerce.number({ error: 'expected a positive integer' }).int().positive();
// Past its limit a value is told the limit, not only that it must be a positive integer.
const positiveIntUpTo = (max: number) => positiveInt.max(max, `expected a positive integer up to ${max}`);

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export const ConfigSchema = z.object({
  /**
   * The one login the command needs: the application's own for `worker` and `api` (they refuse
   * one that could rewrite the ledger, src/db/appLogin.ts); the owner's for `migrate`, and for
   * `dev`, which migrates and makes the application's login from it.
   */
  DATABASE_URL: postgresUrl.optional(),
  TEMPORAL_ADDRESS: hostPort.default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_UI_PORT: port.default(8233),
  /**
   * Where people's browsers reach the Temporal Web UI, for the audit page's links to workflows;
   * default: the dev server's UI on this host, http://localhost:TEMPORAL_UI_PORT.
   */
  TEMPORAL_UI_URL: z
    .string()
    .regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'expected an http:// or https:// URL')
    .transform((url) => url.replace(/\/+$/, ''))
    .optional(),
  /** Where `opsledger dev` starts its Temporal dev server when TEMPORAL_ADDRESS is not set. */
  OPSLEDGER_TEMPORAL_DEV_PORT: port.default(7233),
  TEMPORAL_CLI: z.string().min(1).optional(),
  PORT: port.default(8080),
  OPSLEDGER_DATA_DIR: z.string().min(1).default(path.join(projectRoot, '.opsledger')),
  OPSLEDGER_PLAYBOOKS_DIR: z.string().min(1).default(path.join(projectRoot, 'playbooks')),
  OPSLEDGER_TASK_QUEUE: z.string().min(1).default('opsledger'),
  OPSLEDGER_AGENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, dot, dash or underscore')
    .default(os.hostname().replace(/[^A-Za-z0-9._-]/g, '-')),
  OPSLEDGER_EMBEDDED_PG_PORT: port.default(54329),
  OPSLEDGER_DB_ROLE: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/, 'expected a PostgreSQL role name (lower-case letters, digits, underscore)')
    .default('opsledger_app'),
  OPSLEDGER_OUTPUT_TAIL_LINES: positiveIntUpTo(1000).default(50),
  OPSLEDGER_PLAYBOOK_TIMEOUT_S: positiveInt.default(3600),
  /** Admission: an agent whose last capacity report is older than this is not used. */
  OPSLEDGER_AGENT_MAX_AGE_S: positiveInt.default(30),
  /** Admission: an agent whose load would go above this % cannot take a task. */
  OPSLEDGER_LOAD_THRESHOLD_PCT: positiveIntUpTo(100_000).default(80),
  /** How often a worker reports its own host's capacity; 0 turns the report off. */
  OPSLEDGER_AGENT_REPORT_S: z.coerce.number({ error: 'expected a number of seconds' }).min(0).default(5),
  OPSLEDGER_HEARTBEAT_TIMEOUT_S: positiveInt.default(30),
  OPSLEDGER_SCHEDULE_TO_START_TIMEOUT_S: positiveInt.default(60),
  OPSLEDGER_MAX_INFRA_ATTEMPTS: positiveIntUpTo(20).default(3),
  /** How long a task may wait for dispatch when its submit gives no `maxWaitS`. */
  OPSLEDGER_MAX_WAIT_S: positiveIntUpTo(30 * 24 * 3600).default(86400),
  /** API bearer tokens as name:role:sha256 entries; `opsledger token` makes one. */
  OPSLEDGER_TOKENS: TokensSchema.default([]),
  /** Keys the audit cursors; set the same value on every API replica. */
  OPSLEDGER_CURSOR_SECRET: z.string().min(16, 'expected at least 16 characters').optional(),
  /** Seals secretVars between the API and the workers; the same value on both. */
  OPSLEDGER_SECRET_KEY: z.string().min(16, 'expected at least 16 characters').optional(),
  /** Checks ledger checkpoints: the public key `opsledger audit keygen` prints (it cannot sign). */
  OPSLEDGER_CHECKPOINT_VERIFIER_KEY: z
    .string()
    .regex(/^[^\s+]+\+[0-9a-fA-F]{8}\+[A-Za-z0-9+/]+={0,2}$/, 'expected <name>+<key ID>+<base64 key>, as `opsledger audit keygen` prints it')
    .optional(),
  LOG_LEVEL: logLevel.default('info'),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((line) => `  ${line}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment once; a bad value names the variable and the rule it broke, never the
 * value, which may be a secret (a key, a URL with its password). zod's own messages quote no input.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return parseEnv(ConfigSchema, env);
}

/** The variables `schema` names, parsed from `env` as loadConfig does; an empty one counts as unset. */
export function parseEnv<Shape extends z.ZodRawShape>(schema: z.ZodObject<Shape>, env: NodeJS.ProcessEnv): z.infer<z.ZodObject<Shape>> {
  const present = Object.fromEntries(
    Object.keys(schema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => `${String(issue.path[0])}: ${issue.message}`),
    );
  }
  return parsed.data;
}

/** The per-task settings fixed at submit time and carried in the workflow input. */
export function taskRuntimeOf(config: Config) {
  return {
    pool: config.OPSLEDGER_TASK_QUEUE,
    heartbeatTimeoutS: config.OPSLEDGER_HEARTBEAT_TIMEOUT_S,
    scheduleToStartTimeoutS: config.OPSLEDGER_SCHEDULE_TO_START_TIMEOUT_S,
    maxInfraAttempts: config.OPSLEDGER_MAX_INFRA_ATTEMPTS,
    maxWaitS: config.OPSLEDGER_MAX_WAIT_S,
  };
}

/** The Temporal Web UI the page links to: its address for browsers, and the namespace of our workflows. */
export function temporalUiOf(config: Config): { url: string; namespace: string } {
  return { url: config.TEMPORAL_UI_URL ?? `http://localhost:${config.TEMPORAL_UI_PORT}`, namespace: config.TEMPORAL_NAMESPACE };
}

export function agentTaskQueue(config: Config): string {
  return `${config.OPSLEDGER_TASK_QUEUE}-agent-${config.OPSLEDGER_AGENT_ID}`;
}
