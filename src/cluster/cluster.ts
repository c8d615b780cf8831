import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, type Config } from '../config';
import { databaseUrl, ensureDatabase } from '../db/databases';
import { embeddedPostgresUrl, startEmbeddedPostgres } from '../db/embeddedPostgres';
import { Lifecycle } from '../lifecycle';
import { logger } from '../logger';
import { registerSearchAttributesWhenReady } from '../temporal/searchAttributes';
import { devDatabaseOf, devDefaults, keptInDataDir, runMigrations, type DevDatabase } from '../stack';
import { freePortsBelowSmallintLimit, isFree } from './ports';
import { isRunning, record, spawnOpsledger, stopRecorded, type RecordedProcess } from './processes';
import type { ClusterSettings } from './settings';
import { dropProcess, putProcess, readState, stateFile, writeState, type ClusterState } from './state';
import {
  ensureNamespace,
  ensureTemporalServer,
  ensureTemporalSqlTool,
  setupTemporalSchemas,
  spawnTemporalServer,
  untilServing,
  writeServerConfig,
  type TemporalPorts,
} from './temporalServer';
import { ensureTemporalUiServer, spawnTemporalUi, uiUrlOn } from './temporalUi';

export type ClusterUp = { state: ClusterState; adminToken: string; apiUrls: string[]; uiUrl?: string; started: string[]; stopped: string[] };

/**
 * The production shape on one machine, each part its own process: PostgreSQL (DATABASE_URL's
 * server, or an embedded cluster in the cluster folder), a Temporal server persisted in it with
 * SQL visibility, the `default` namespace and the Ops* search attributes, its Web UI, the
 * migrations, N agents and M API replicas. Idempotent: what the state file records as running is
 * kept, what is missing (never started, or since killed) is started, so a second `up` restarts a
 * dead part and a larger OPSLEDGER_CLUSTER_AGENTS adds agents; a smaller count stops the agents
 * and API replicas beyond it, and OPSLEDGER_CLUSTER_UI=0 the UI. On failure, what this call
 * started is stopped again.
 */
export async function clusterUp(configured: Config, settings: ClusterSettings): Promise<ClusterUp> {
  const dir = settings.OPSLEDGER_CLUSTER_DIR;
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const { token, config } = devDefaults({ ...configured, OPSLEDGER_DATA_DIR: dir });
  const startedNow = new Lifecycle();
  const started: string[] = [];
  const stopped: string[] = [];
  const state = readState(dir) ?? (await newState(config, settings));
  const keep = (proc: RecordedProcess) => {
    putProcess(state, proc);
    writeState(dir, state);
    started.push(proc.name);
    startedNow.add(proc.name, () => stopRecorded(proc, 'SIGTERM', 10_000));
  };
  try {
    const database = await provideClusterDatabase(config, dir, state, keep);
    await runMigrations(database);
    await provideTemporalServer(config, settings, state, database, keep);
    stopped.push(...(settings.OPSLEDGER_CLUSTER_UI ? [] : await stopAndForget(dir, state, state.processes.filter((p) => p.role === 'ui'))));
    const uiUrl = settings.OPSLEDGER_CLUSTER_UI ? await provideTemporalUi(config, settings, state, keep) : undefined;
    const env = childEnvironment(config, dir, database, state.temporalAddress, uiUrl);
    stopped.push(...(await stopBeyondCount(dir, state, 'api', settings.OPSLEDGER_CLUSTER_APIS)));
    stopped.push(...(await stopBeyondCount(dir, state, 'agent', settings.OPSLEDGER_CLUSTER_AGENTS)));
    startMissingAgents(settings, state, env.worker, keep);
    await startMissingApis(config, settings, state, env.api, keep);
    const apiUrls = state.processes.filter((p) => p.role === 'api' && p.port).map((p) => `http://127.0.0.1:${p.port}`);
    await untilReady(state, [...apiUrls.map((url) => `${url}/readyz`), ...(uiUrl ? [uiUrl] : [])], apiUrls[0], token);
    return { state, adminToken: token, apiUrls, ...(uiUrl ? { uiUrl } : {}), started, stopped };
  } catch (err) {
    await startedNow.close();
    throw err;
  }
}

type Keep = (proc: RecordedProcess) => void;

/** agent-1 … agent-N, each an `opsledger worker` with its own agent id, so its own task queue. */
function startMissingAgents(settings: ClusterSettings, state: ClusterState, env: NodeJS.ProcessEnv, keep: Keep): void {
  for (let i = 1; i <= settings.OPSLEDGER_CLUSTER_AGENTS; i += 1) {
    const name = `agent-${i}`;
    if (runningNamed(state, name)) continue;
    const log = path.join(settings.OPSLEDGER_CLUSTER_DIR, 'logs', `${name}.log`);
    keep(record('agent', name, spawnOpsledger('worker', { ...env, OPSLEDGER_AGENT_ID: name }, log), log));
  }
}

/** api-1 … api-M, each an `opsledger api` on PORT + i - 1. */
async function startMissingApis(config: Config, settings: ClusterSettings, state: ClusterState, env: NodeJS.ProcessEnv, keep: Keep): Promise<void> {
  for (let i = 1; i <= settings.OPSLEDGER_CLUSTER_APIS; i += 1) {
    const name = `api-${i}`;
    const port = config.PORT + i - 1;
    if (runningNamed(state, name)) continue;
    if (!(await isFree(port))) throw new ConfigError([`PORT: ${name} would listen on ${port} (PORT + ${i - 1}), which is taken`]);
    const log = path.join(settings.OPSLEDGER_CLUSTER_DIR, 'logs', `${name}.log`);
    keep(record('api', name, spawnOpsledger('api', { ...env, PORT: String(port) }, log), log, port));
  }
}

/**
 * The `role`s numbered above `count` (agent-3 once OPSLEDGER_CLUSTER_AGENTS is 2), highest first,
 * each stopped as `down` stops it and then dropped from the state file, so `down` stays exact.
 * A record whose process is gone already is dropped too, but not named as stopped.
 */
async function stopBeyondCount(dir: string, state: ClusterState, role: 'agent' | 'api', count: number): Promise<string[]> {
  const beyond = state.processes.filter((p) => p.role === role && numberOf(p) > count).sort((a, b) => numberOf(b) - numberOf(a));
  return stopAndForget(dir, state, beyond);
}

/** Each of `procs` in turn stopped as `down` stops it and dropped from the state file; returns those that were running. */
async function stopAndForget(dir: string, state: ClusterState, procs: RecordedProcess[]): Promise<string[]> {
  const stopped: string[] = [];
  for (const proc of procs) {
    if (isRunning(proc)) {
      await stopGracefully(proc);
      stopped.push(proc.name);
    }
    dropProcess(state, proc.name);
    writeState(dir, state);
  }
  return stopped;
}

/** 3 for agent-3. */
function numberOf(proc: RecordedProcess): number {
  return Number(proc.name.slice(proc.name.lastIndexOf('-') + 1));
}

async function newState(config: Config, settings: ClusterSettings): Promise<ClusterState> {
  const [frontendHttp, history, matching, worker, ...membership] = await freePortsBelowSmallintLimit(8, new Set([settings.OPSLEDGER_CLUSTER_TEMPORAL_PORT]));
  const temporalPorts: TemporalPorts = {
    frontend: settings.OPSLEDGER_CLUSTER_TEMPORAL_PORT,
    frontendHttp: frontendHttp!,
    history: history!,
    matching: matching!,
    worker: worker!,
    frontendMembership: membership[0]!,
    historyMembership: membership[1]!,
    matchingMembership: membership[2]!,
    workerMembership: membership[3]!,
  };
  return { temporalAddress: `127.0.0.1:${temporalPorts.frontend}`, namespace: config.TEMPORAL_NAMESPACE, temporalPorts, processes: [] };
}

function runningNamed(state: ClusterState, name: string): boolean {
  const proc = state.processes.find((p) => p.name === name);
  return proc !== undefined && isRunning(proc);
}

/**
 * DATABASE_URL as its owner (a login that may create roles and databases, as for `dev`; its database
 * is created when missing, as Temporal's are),
 * or the embedded PostgreSQL in the cluster folder, started unless it still runs.
 */
async function provideClusterDatabase(config: Config, dir: string, state: ClusterState, keep: Keep): Promise<DevDatabase> {
  if (config.DATABASE_URL) {
    await ensureDatabase(databaseUrl(config.DATABASE_URL, 'postgres'), decodeURIComponent(new URL(config.DATABASE_URL).pathname.slice(1)));
    return devDatabaseOf(config.DATABASE_URL, config);
  }
  const port = config.OPSLEDGER_EMBEDDED_PG_PORT;
  if (runningNamed(state, 'postgres')) return devDatabaseOf(embeddedPostgresUrl(dir, port, 'opsledger'), config);
  const pg = await startEmbeddedPostgres({ dataDir: dir, port, database: 'opsledger' });
  const pid = Number(fs.readFileSync(path.join(dir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
  keep(record('postgres', 'postgres', pid, pg.logFile, port));
  return devDatabaseOf(pg.url, config);
}

async function provideTemporalServer(
  config: Config,
  settings: ClusterSettings,
  state: ClusterState,
  database: DevDatabase,
  keep: Keep,
): Promise<void> {
  const [server, sqlTool] = [await ensureTemporalServer(settings.TEMPORAL_SERVER), await ensureTemporalSqlTool(settings.TEMPORAL_SQL_TOOL)];
  const databases = { serverUrl: databaseUrl(database.ownerUrl, 'postgres'), history: settings.DBNAME, visibility: settings.VISIBILITY_DBNAME };
  await setupTemporalSchemas(sqlTool, databases);
  const files = writeServerConfig(path.join(settings.OPSLEDGER_CLUSTER_DIR, 'temporal'), databases, state.temporalPorts);
  const log = path.join(settings.OPSLEDGER_CLUSTER_DIR, 'logs', 'temporal.log');
  if (!runningNamed(state, 'temporal')) {
    // Another server on the port (`opsledger dev`'s) would answer the readiness check in its place.
    if (!(await isFree(state.temporalPorts.frontend))) {
      throw new ConfigError([`OPSLEDGER_CLUSTER_TEMPORAL_PORT: port ${state.temporalPorts.frontend} is taken by another process`]);
    }
    keep(record('temporal', 'temporal', spawnTemporalServer(server, files, log), log, state.temporalPorts.frontend));
  }
  await untilServing(state.temporalAddress, state.processes.find((p) => p.name === 'temporal')!);
  await ensureNamespace(state.temporalAddress, config.TEMPORAL_NAMESPACE);
  await registerSearchAttributesWhenReady(state.temporalAddress, config.TEMPORAL_NAMESPACE, 120);
}

/**
 * The Web UI server (compose's temporal-ui) on OPSLEDGER_CLUSTER_UI_PORT, pointed at the cluster's
 * frontend, unless it still runs; returns where browsers reach it, on the port it was started on.
 */
async function provideTemporalUi(config: Config, settings: ClusterSettings, state: ClusterState, keep: Keep): Promise<string> {
  if (!runningNamed(state, 'temporal-ui')) {
    const uiServer = await ensureTemporalUiServer(settings.TEMPORAL_UI_SERVER);
    const port = settings.OPSLEDGER_CLUSTER_UI_PORT;
    // `opsledger dev`'s UI uses the same default port, and would answer the readiness check in its place.
    if (!(await isFree(port))) throw new ConfigError([`OPSLEDGER_CLUSTER_UI_PORT: port ${port} is taken by another process`]);
    const [dir, log] = [path.join(settings.OPSLEDGER_CLUSTER_DIR, 'temporal-ui'), path.join(settings.OPSLEDGER_CLUSTER_DIR, 'logs', 'temporal-ui.log')];
    const ui = { temporalAddress: state.temporalAddress, namespace: config.TEMPORAL_NAMESPACE, port };
    keep(record('ui', 'temporal-ui', spawnTemporalUi(uiServer, dir, ui, log), log, port));
  }
  return uiUrlOn(state.processes.find((p) => p.name === 'temporal-ui')!.port!);
}

/**
 * The environment of the agents and API replicas, by the names docker-compose.yml gives them
 * (x-opsledger-env): the application's login, the Temporal frontend, the shared secret key; the
 * API replicas also share the tokens and the cursor key, so a cursor from one works on another.
 * Anything else the caller set (OPSLEDGER_AGENT_REPORT_S, timeouts) passes through. The audit
 * page links to the cluster's Web UI unless TEMPORAL_UI_URL says where browsers reach it instead
 * (through a tunnel or a proxy).
 */
function childEnvironment(config: Config, dir: string, database: DevDatabase, temporalAddress: string, uiUrl: string | undefined) {
  const common: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: database.appUrl,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
    LOG_LEVEL: config.LOG_LEVEL,
    OPSLEDGER_SECRET_KEY: config.OPSLEDGER_SECRET_KEY,
    OPSLEDGER_LOAD_THRESHOLD_PCT: String(config.OPSLEDGER_LOAD_THRESHOLD_PCT),
    OPSLEDGER_DATA_DIR: dir,
  };
  return {
    worker: common,
    api: {
      ...common,
      ...(uiUrl ? { TEMPORAL_UI_URL: config.TEMPORAL_UI_URL ?? uiUrl } : {}),
      OPSLEDGER_TOKENS: config.OPSLEDGER_TOKENS.map((t) => `${t.name}:${t.role}:${t.sha256}`).join(','),
      OPSLEDGER_CURSOR_SECRET: config.OPSLEDGER_CURSOR_SECRET ?? keptInDataDir(config, 'cursor-secret', () => crypto.randomBytes(32).toString('base64url')),
    },
  };
}

/**
 * Every one of `readyUrls` (each API's /readyz, the Web UI's page) answers 200, and every agent has
 * a live capacity report on `agentsApiUrl` (so admission can pick it).
 */
async function untilReady(state: ClusterState, readyUrls: string[], agentsApiUrl: string | undefined, token: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const agents = state.processes.filter((p) => p.role === 'agent' && isRunning(p)).map((p) => p.name);
  for (;;) {
    const waitingFor = await notYetReady(readyUrls, agentsApiUrl, agents, token);
    if (waitingFor.length === 0) return;
    const dead = state.processes.filter((p) => !isRunning(p));
    if (dead.length > 0) throw new Error(`${dead.map((p) => p.name).join(', ')} exited; see ${dead.map((p) => p.log).join(', ')}`);
    if (Date.now() > deadline) throw new Error(`not ready after ${timeoutMs / 1000} s: ${waitingFor.join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function notYetReady(readyUrls: string[], agentsApiUrl: string | undefined, agents: string[], token: string): Promise<string[]> {
  const waiting: string[] = [];
  for (const url of readyUrls) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (!ok) waiting.push(url);
  }
  if (agents.length === 0 || agentsApiUrl === undefined) return waiting;
  const live = await fetch(`${agentsApiUrl}/api/v1/agents`, { headers: { authorization: `Bearer ${token}` } })
    .then(async (r) => (r.ok ? ((await r.json()) as { agents: { agentId: string; live: boolean }[] }).agents : []), () => [])
    .then((list) => new Set(list.filter((a) => a.live).map((a) => a.agentId)));
  return [...waiting, ...agents.filter((agent) => !live.has(agent))];
}

/** How `down` stops each role, in this order: the UI, APIs and agents first, the servers they use last. */
const STOP_ORDER: { role: RecordedProcess['role']; signal: NodeJS.Signals; graceMs: number }[] = [
  { role: 'ui', signal: 'SIGTERM', graceMs: 10_000 },
  { role: 'api', signal: 'SIGTERM', graceMs: 15_000 },
  // On SIGTERM a worker gives running playbooks 30 s (src/worker.ts).
  { role: 'agent', signal: 'SIGTERM', graceMs: 40_000 },
  { role: 'temporal', signal: 'SIGTERM', graceMs: 20_000 },
  // PostgreSQL's fast shutdown.
  { role: 'postgres', signal: 'SIGINT', graceMs: 30_000 },
];

/** By its role's signal and grace, as `down` stops it. */
function stopGracefully(proc: RecordedProcess): Promise<void> {
  const { signal, graceMs } = STOP_ORDER.find((step) => step.role === proc.role)!;
  return stopRecorded(proc, signal, graceMs);
}

/** Stops exactly what the state file records (a pid since reused by another process is left alone), then removes it. */
export async function clusterDown(dir: string): Promise<string[]> {
  const state = readState(dir);
  if (!state) return [];
  const stopped: string[] = [];
  for (const { role } of STOP_ORDER) {
    const procs = state.processes.filter((p) => p.role === role && isRunning(p));
    await Promise.all(procs.map(stopGracefully));
    stopped.push(...procs.map((p) => p.name));
  }
  fs.rmSync(stateFile(dir), { force: true });
  logger.debug({ stopped }, 'cluster down');
  return stopped;
}
