import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { PlaybookRunner } from '../../activities/ansibleRunner';
import type { HostCapacity } from '../../src/admission/hostCapacity';
import { createAdmissionRepository } from '../../src/admission/repository';
import { createApp } from '../../src/api/app';
import { hashToken, type Role } from '../../src/api/auth';
import { agentTaskQueue, loadConfig, taskRuntimeOf, temporalUiOf, type Config } from '../../src/config';
import { refuseOwnerLogin } from '../../src/db/appLogin';
import { createDb, type Db } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';
import { connectWorker, startOpsWorker, type OpsWorker } from '../../src/worker';
import { TEST_ENV, testEnv } from './testEnv';

export type TestStack = {
  config: Config;
  baseUrl: string;
  db: Db;
  temporal: Client;
  /** Absent when the test runs its workers as separate processes. */
  worker?: OpsWorker;
  close(): Promise<void>;
};

/** One token per role; the API under test knows their hashes. The agent one is agent `test-agent`'s. */
export const TEST_TOKENS: Record<Role, string> = {
  viewer: 'test-viewer-token',
  operator: 'test-operator-token',
  orchestrator: 'test-orchestrator-token',
  admin: 'test-admin-token',
  agent: 'test-agent-token',
};

export const testTokenConfig = Object.entries(TEST_TOKENS).map(([role, token]) => ({
  name: `test-${role}`,
  role: role as Role,
  sha256: hashToken(token),
}));

/** The token the stack's own agent reports with over HTTP: an agent token is named by its agent id. */
export const agentToken = (agentId: string) => `test-agent-token-${agentId}`;

const agentTokenConfig = (agentId: string) => ({ name: agentId, role: 'agent' as const, sha256: hashToken(agentToken(agentId)) });

/** A roomy, idle host, so tests do not depend on how busy this machine happens to be. */
export const IDLE_HOST: HostCapacity = {
  cpuCores: 8,
  loadPct: 0,
  memoryTotalMb: 16384,
  memoryFreeMb: 16384,
  gpuVramTotalMb: null,
  gpuVramFreeMb: null,
};

/** A worker on its own task queue and an API on a free port, against the shared test services. */
export async function startTestStack(
  opts: { runner?: PlaybookRunner; env?: NodeJS.ProcessEnv; host?: HostCapacity; worker?: boolean } = {},
): Promise<TestStack> {
  const id = crypto.randomUUID().slice(0, 8);
  const config = loadConfig({
    DATABASE_URL: testEnv('databaseUrl'),
    TEMPORAL_ADDRESS: testEnv('temporalAddress'),
    OPSLEDGER_TASK_QUEUE: `test-${id}`,
    OPSLEDGER_AGENT_ID: `agent-${id}`,
    OPSLEDGER_AGENT_REPORT_S: '1',
    OPSLEDGER_HEARTBEAT_TIMEOUT_S: '5',
    OPSLEDGER_SCHEDULE_TO_START_TIMEOUT_S: '10',
    OPSLEDGER_SECRET_KEY: 'test-secret-key-0123456789',
    LOG_LEVEL: 'warn',
    ...opts.env,
  });
  await refuseOwnerLogin(testEnv('databaseUrl'), TEST_ENV.databaseUrl);
  const db = createDb({ connectionString: testEnv('databaseUrl'), role: config.OPSLEDGER_DB_ROLE });
  const workerConnection = await connectWorker(config.TEMPORAL_ADDRESS);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const temporal = new Client({ connection });
  const worker = opts.worker === false ? undefined : await startOpsWorker({
    config,
    db,
    connection: workerConnection,
    temporal,
    runner: opts.runner,
    probe: async () => opts.host ?? IDLE_HOST,
    workflowBundle: testEnv('workflowBundle'),
  });
  const app = createApp({
    db,
    ledger: createLedgerRepository(db),
    admission: createAdmissionRepository(db, {
      agentMaxAgeS: config.OPSLEDGER_AGENT_MAX_AGE_S,
      loadThresholdPct: config.OPSLEDGER_LOAD_THRESHOLD_PCT,
    }),
    temporal,
    runtime: taskRuntimeOf(config),
    playbooksDir: config.OPSLEDGER_PLAYBOOKS_DIR,
    tokens: [...testTokenConfig, agentTokenConfig(config.OPSLEDGER_AGENT_ID)],
    secretKey: config.OPSLEDGER_SECRET_KEY,
    cursorSecret: 'test-cursor-secret-0123456789',
    temporalUi: temporalUiOf(config),
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  // A task that reaches admission before its agent's first report waits for it (paused, then
  // resumed): correct, but not the normal path most tests are about. The worker's first report
  // may have failed (that is only logged), so wait for a report, not for the worker's start.
  if (worker && config.OPSLEDGER_AGENT_REPORT_S > 0) await untilAgentReported(baseUrl, config.OPSLEDGER_AGENT_ID);

  return {
    config,
    baseUrl,
    db,
    temporal,
    worker,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await worker?.stop();
      await workerConnection.close();
      await connection.close();
      await db.close();
    },
  };
}

/** Polls until `check` returns a value, or fails with what it last saw. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits until the agent (any agent when none is named) has a live capacity report. */
export function untilAgentReported(baseUrl: string, agentId?: string, token: string = TEST_TOKENS.admin): Promise<true> {
  return eventually(async () => {
    const res = await api(baseUrl, 'GET', '/api/v1/agents', undefined, token).catch(() => undefined);
    const agents: { agentId: string; live: boolean }[] = res?.status === 200 ? res.json.agents : [];
    return agents.some((a) => a.live && (agentId === undefined || a.agentId === agentId)) ? true : undefined;
  });
}

export async function api(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  token: string | null = TEST_TOKENS.admin,
): Promise<{ status: number; contentType: string; json: any }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  return { status: res.status, contentType, json: text && contentType.includes('json') ? JSON.parse(text) : undefined };
}

/**
 * The stack's agent reports its capacity over HTTP, with its own token, for tests that set what
 * admission sees: four idle cores and 8 GiB free unless `over` says otherwise.
 */
export function reportCapacity(stack: TestStack, over: Record<string, unknown> = {}) {
  const agentId = stack.config.OPSLEDGER_AGENT_ID;
  return api(stack.baseUrl, 'PUT', `/api/v1/agents/${agentId}/heartbeat`, {
    pool: stack.config.OPSLEDGER_TASK_QUEUE,
    taskQueue: agentTaskQueue(stack.config),
    cpuCores: 4,
    loadPct: 10,
    memoryTotalMb: 8192,
    memoryFreeMb: 8192,
    ...over,
  }, agentToken(agentId));
}
