import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePortsBelowSmallintLimit, isFree } from '../../src/cluster/ports';
import { isRunning, type RecordedProcess } from '../../src/cluster/processes';
import { readState, type ClusterState } from '../../src/cluster/state';
import { dropAppLogin } from '../../src/db/appLogin';
import { databaseUrl, dropDatabase } from '../../src/db/databases';
import { opsledger, type CliResult } from '../support/cli';
import { api, eventually } from '../support/stack';
import { removeDataDir } from '../support/dataDir';

/** Up to 20 minutes: the first run on a machine builds the Temporal server, its sql tool and the Web UI server. */
export const CLUSTER_UP_TIMEOUT_MS = 20 * 60_000;

export type TestCluster = {
  env: NodeJS.ProcessEnv;
  adminToken: string;
  apiUrls: string[];
  state(): ClusterState;
  process(name: string): RecordedProcess;
  /** `opsledger cluster up` again (with `env` added): starts what is not running. */
  up(env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** The admin token's call on one API replica. */
  call(apiUrl: string, method: string, urlPath: string, body?: unknown): ReturnType<typeof api>;
  close(): Promise<void>;
};

/**
 * `opsledger cluster up` as a user runs it (the compiled CLI), in a scratch folder, on databases of
 * its own on DATABASE_URL's server (named olc_<id>…, dropped again by close) or, without
 * DATABASE_URL, on an embedded PostgreSQL in that folder. Playbooks run on localhost, so agents
 * report generous load limits: this machine's own load must not hold tasks.
 */
export async function startTestCluster(opts: { agents: number; apis: number; env?: NodeJS.ProcessEnv }): Promise<TestCluster> {
  const id = `olc_${Date.now().toString(36)}_${process.pid}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-cluster-'));
  const serverUrl = process.env.DATABASE_URL;
  const [temporalPort, embeddedPgPort, uiPort] = await freePortsBelowSmallintLimit(3);
  const env: NodeJS.ProcessEnv = {
    ...(serverUrl ? { DATABASE_URL: databaseUrl(serverUrl, id) } : { OPSLEDGER_EMBEDDED_PG_PORT: String(embeddedPgPort) }),
    DBNAME: `${id}_temporal`,
    VISIBILITY_DBNAME: `${id}_visibility`,
    OPSLEDGER_CLUSTER_DIR: dir,
    OPSLEDGER_CLUSTER_TEMPORAL_PORT: String(temporalPort),
    OPSLEDGER_CLUSTER_UI_PORT: String(uiPort),
    OPSLEDGER_CLUSTER_AGENTS: String(opts.agents),
    OPSLEDGER_CLUSTER_APIS: String(opts.apis),
    PORT: String(await consecutiveFreePorts(Math.max(opts.apis, 1))),
    OPSLEDGER_AGENT_REPORT_S: '1',
    OPSLEDGER_HEARTBEAT_TIMEOUT_S: '10',
    OPSLEDGER_SCHEDULE_TO_START_TIMEOUT_S: '15',
    OPSLEDGER_LOAD_THRESHOLD_PCT: '1000',
    LOG_LEVEL: 'warn',
    ...opts.env,
  };
  const up = (more: NodeJS.ProcessEnv = {}) => opsledger(['cluster', 'up'], { ...env, ...more }, CLUSTER_UP_TIMEOUT_MS);
  const close = async () => {
    const down = await opsledger(['cluster', 'down'], env, 120_000);
    if (down.code !== 0) process.stderr.write(`cluster down failed:\n${down.stderr}\n`);
    if (serverUrl) await dropEverything(databaseUrl(serverUrl, 'postgres'), id);
    removeDataDir(dir);
  };
  const first = await up();
  if (first.code !== 0) {
    await close();
    throw new Error(`cluster up failed (${first.code}):\n${first.stdout}\n${first.stderr}`);
  }
  const state = () => readState(dir)!;
  const adminToken = fs.readFileSync(path.join(dir, 'admin-token'), 'utf8').trim();
  const apiUrls = state()
    .processes.filter((p) => p.role === 'api')
    .map((p) => `http://127.0.0.1:${p.port}`);
  return {
    env,
    adminToken,
    apiUrls,
    state,
    process: (name) => {
      const found = state().processes.find((p) => p.name === name);
      if (!found) throw new Error(`the cluster has no process ${name}`);
      return found;
    },
    up,
    call: (apiUrl, method, urlPath, body) => api(apiUrl, method, urlPath, body, adminToken),
    close,
  };
}

/** `count` free ports in a row, for the API replicas on PORT, PORT+1, … */
async function consecutiveFreePorts(count: number): Promise<number> {
  for (;;) {
    const [base] = await freePortsBelowSmallintLimit(1);
    const rest = await Promise.all(Array.from({ length: count - 1 }, (_, i) => isFree(base! + i + 1)));
    if (rest.every(Boolean)) return base!;
  }
}

/** The three databases and the application's login of this run; other runs' are left alone. */
async function dropEverything(adminUrl: string, id: string): Promise<void> {
  for (const database of [id, `${id}_temporal`, `${id}_visibility`]) await dropDatabase(adminUrl, database);
  await dropAppLogin(adminUrl, id);
}

export const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
export type Row = { status: string; agent?: string | null; outcome?: any };

export async function trail(cluster: TestCluster, apiUrl: string, taskId: string): Promise<Row[]> {
  return (await cluster.call(apiUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? [];
}

export function untilFinal(cluster: TestCluster, apiUrl: string, taskId: string, timeoutMs = 180_000): Promise<Row[]> {
  return eventually(async () => {
    const rows = await trail(cluster, apiUrl, taskId);
    return rows.some((r) => FINAL.includes(r.status)) ? rows : undefined;
  }, timeoutMs);
}

export async function taskState(cluster: TestCluster, apiUrl: string, taskId: string): Promise<any> {
  return (await cluster.call(apiUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;
}

export function untilGone(proc: RecordedProcess, timeoutMs = 30_000): Promise<true> {
  return eventually(async () => (isRunning(proc) ? undefined : true), timeoutMs);
}
