import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { FINAL_STATUSES } from '../../contracts';
import { createDb } from '../../src/db/pool';
import { logger } from '../../src/logger';
import { verifyChain } from '../../src/ledger/verify';
import { pidsRunning } from '../../test/support/processes';
import { mulberry32 } from '../../test/support/seeded';
import { soakApi, type SoakApi } from './api';
import { leakScan, newCanary, type Canary } from './canary';
import { FAULT_KINDS, startSoakCluster, type FaultKind, type SoakCluster } from './cluster';
import { runLoad } from './load';
import { sleep, untilAllEnded, type PartResult } from './part';
import { scanForSecret } from './secrets';

/**
 * `npm run soak`, on the stack of ./cluster.ts, in two parts. The fault part: a stream of tasks
 * (some quick, some working for seconds, some pausing for capacity, some cancelled, some
 * overridden) while faults are injected at seeded moments: SIGKILL and restart of the worker, the
 * API, the Temporal dev server and PostgreSQL, and the worker frozen for seconds. Then every task
 * must end, with one final row each, no playbook process left, no playbook run twice unless the
 * ledger records the lost run. The load part (./load.ts): a burst of tasks, and a batch held then
 * released. After both: an intact chain, nothing left in the pause queue or reserved, neither the
 * API nor the worker exited on its own. Every task carries a secret unique to the run, which is
 * then looked for everywhere (./secrets.ts).
 *
 * SOAK_PARTS (`faults,load`, or one of them), SOAK_SEED (replays a run), SOAK_FAULTS (per kind,
 * default 20), SOAK_FAULT_EVERY_MS (default 4000), SOAK_DRAIN_TIMEOUT_S (how long every task gets to
 * end after the last fault, and a load stage after its submits or release, default 900),
 * SOAK_LOAD_BURST (500), SOAK_LOAD_HELD (1000). Exit 0 when every check holds, 1 otherwise.
 */

const PARTS = new Set((process.env.SOAK_PARTS ?? 'faults,load').split(',').map((p) => p.trim()));
const SEED = Number(process.env.SOAK_SEED ?? 20261201);
const FAULTS_PER_KIND = Number(process.env.SOAK_FAULTS ?? 20);
const FAULT_EVERY_MS = Number(process.env.SOAK_FAULT_EVERY_MS ?? 4000);
const DRAIN_TIMEOUT_MS = Number(process.env.SOAK_DRAIN_TIMEOUT_S ?? 900) * 1000;
const LOAD_BURST = Number(process.env.SOAK_LOAD_BURST ?? 500);
const LOAD_HELD = Number(process.env.SOAK_LOAD_HELD ?? 1000);
// A part that comes back in this time has recovered; past it the soak stops, saying what did not.
const RECOVERY_TIMEOUT_MS = 180_000;

type Kind = 'quick' | 'working' | 'capacity' | 'cancelled' | 'overridden';
type Submitted = { taskId: string; kind: Kind; runsFile: string };

async function main(): Promise<void> {
  logger.level = 'error';
  const unknown = [...PARTS].filter((p) => p !== 'faults' && p !== 'load');
  if (unknown.length > 0 || PARTS.size === 0) throw new Error(`SOAK_PARTS: expected faults, load or both, comma-separated; got ${process.env.SOAK_PARTS}`);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-soak-'));
  const canary = newCanary();
  const scan = leakScan(canary.value, canary.sha256);
  const cluster = await startSoakCluster(scratch);
  try {
    const api = soakApi(cluster, scan);
    const results: PartResult[] = [];
    // Each part's table is printed as soon as it is done: a long load part comes after it.
    const done = (result: PartResult) => {
      for (const line of result.lines) console.log(line);
      results.push(result);
    };
    if (PARTS.has('faults')) done(await runFaults(cluster, api, canary, scratch));
    if (PARTS.has('load')) {
      console.log(`\nsoak: load, ${LOAD_BURST} tasks in one burst, then ${LOAD_HELD} held and released`);
      done(await runLoad(cluster, api, canary, `soak-${SEED}`, { burst: LOAD_BURST, held: LOAD_HELD, timeoutMs: DRAIN_TIMEOUT_MS }));
    }
    done(await stackChecks(cluster));
    done(await scanForSecret(cluster, scan, results.flatMap((r) => r.taskIds)));
    const violations = results.flatMap((r) => r.violations);
    console.log(`\n  ${violations.length === 0 ? 'PASS: every check holds' : `FAIL: ${violations.length} checks broken`}`);
    for (const v of violations) console.log(`  VIOLATION ${v}`);
    process.exitCode = violations.length === 0 ? 0 : 1;
  } catch (err) {
    process.exitCode = 1;
    throw err;
  } finally {
    await cluster.close();
    // The processes' logs stay when something went wrong.
    if (process.exitCode) console.log(`  logs of the run kept in ${scratch}`);
    else fs.rmSync(scratch, { recursive: true, force: true });
  }
}

async function runFaults(cluster: SoakCluster, api: SoakApi, canary: Canary, scratch: string): Promise<PartResult> {
  const random = mulberry32(SEED);
  const runsDir = path.join(scratch, 'runs');
  fs.mkdirSync(runsDir);
  console.log(`soak: faults, seed ${SEED}, ${FAULTS_PER_KIND} of each kind (${FAULT_KINDS.join(', ')}), one every ${FAULT_EVERY_MS} ms`);
  const agentMemoryMb = await agentMemory(api);
  const submitted: Submitted[] = [];
  const recoveries: Record<FaultKind, number[]> = { worker: [], api: [], temporal: [], postgres: [], partition: [] };
  let faulting = true;
  // A submit that gives up ends the part through main(), which stops the cluster: left unawaited
  // while the faults go on, its rejection would end the process with the cluster still running.
  let trafficFailed: unknown;
  const traffic = (async () => {
    for (let n = 0; faulting; n++) {
      const kind = (['quick', 'working', 'working', 'capacity', 'capacity', 'cancelled', 'overridden'] as const)[Math.floor(random() * 7)]!;
      const task = { taskId: `soak-${SEED}-${n}`, kind, runsFile: path.join(runsDir, `soak-${SEED}-${n}`) };
      await api.submit(faultTask(task, canary, agentMemoryMb, random));
      submitted.push(task);
      if (kind === 'cancelled' || kind === 'overridden') void command(api, task.taskId, kind === 'cancelled' ? 'cancel' : 'override');
      await sleep(200 + random() * 600);
    }
  })().catch((err: unknown) => {
    trafficFailed = err;
  });

  const schedule = shuffled(FAULT_KINDS.flatMap((kind) => Array.from({ length: FAULTS_PER_KIND }, () => kind)), random);
  for (const [i, kind] of schedule.entries()) {
    if (trafficFailed !== undefined) break;
    await sleep(FAULT_EVERY_MS * (0.5 + random()));
    const started = Date.now();
    if (kind === 'partition') await cluster.partition(2000 + random() * 6000);
    else await cluster.kill(kind);
    await recovered(cluster, api, kind, started);
    recoveries[kind].push(Date.now() - started);
    process.stdout.write(`\r  fault ${i + 1}/${schedule.length} (${kind}), ${submitted.length} tasks submitted   `);
  }
  faulting = false;
  await traffic;
  if (trafficFailed !== undefined) throw trafficFailed;
  console.log(`\n  draining ${submitted.length} tasks`);

  const owner = new Client({ connectionString: cluster.ownerUrl });
  await owner.connect();
  try {
    const ids = submitted.map((t) => t.taskId);
    const counts = await untilAllEnded(owner, ids, DRAIN_TIMEOUT_MS);
    const finals = new Map(ids.map((id) => [id, counts.get(id)?.finals ?? 0]));
    const report = await check(owner, submitted, finals, runsDir);
    const lines = faultTable(recoveries, submitted, report);
    for (const taskId of report.lost.slice(0, 10)) lines.push(`  lost ${taskId}: ${await describeTask(owner, api, taskId)}`);
    return { lines, violations: report.violations, taskIds: ids };
  } finally {
    await owner.end();
  }
}

/** The worker's agent as it reported itself: the memory the capacity-bound tasks are sized by. */
async function agentMemory(api: SoakApi): Promise<number> {
  for (const giveUp = Date.now() + 180_000; Date.now() < giveUp; ) {
    const res = await api.call('GET', '/api/v1/agents').catch(() => undefined);
    const agent = (res?.json as { agents?: { agentId: string; live: boolean; memoryTotalMb: number }[] } | undefined)?.agents?.find((a) => a.live);
    if (agent) return agent.memoryTotalMb;
    await sleep(100);
  }
  throw new Error('the worker never reported its capacity: see worker.log in the scratch folder');
}

/** A task of the fault part; it carries the run's secret, which its playbook checks it got. */
function faultTask(task: Submitted, canary: Canary, memoryMb: number, random: () => number) {
  const seconds = { quick: 0.2, working: 1 + random() * 4, capacity: 2, cancelled: 30, overridden: 1 }[task.kind];
  // Two capacity-bound tasks fit the agent at once; an overridden one fits only an idle agent.
  const needs = { capacity: Math.floor(memoryMb * 0.4), overridden: Math.floor(memoryMb * 0.95) } as Partial<Record<Kind, number>>;
  return {
    taskId: task.taskId,
    action: 'deploy',
    services: ['soak'],
    playbook: 'soak-step.yml',
    extraVars: { runs_file: task.runsFile, seconds: Number(seconds.toFixed(2)), [`${canary.name}_sha256`]: canary.sha256 },
    secretVars: { [canary.name]: canary.value },
    ...(needs[task.kind] ? { requirements: { memoryMb: needs[task.kind] } } : {}),
  };
}

/**
 * An operator command, as an operator would give it: again while the stack is down or the task is
 * not waiting yet (a 409 before its first admission), and, for an override, again whenever the
 * task waits anew (a run lost to a fault sends it back through admission, and an override applies
 * to one dispatch), until the task has ended.
 */
async function command(api: SoakApi, taskId: string, name: 'cancel' | 'override'): Promise<void> {
  for (const giveUp = Date.now() + 10 * 60_000; Date.now() < giveUp; ) {
    await sleep(500);
    const state = await api.call('GET', `/api/v1/tasks/${taskId}`).catch(() => undefined);
    const status = (state?.json as { status?: string } | undefined)?.status ?? '';
    if ((FINAL_STATUSES as readonly string[]).includes(status)) return;
    if (name === 'override' && status !== 'paused' && status !== 'queued') continue;
    const res = await api.call('POST', `/api/v1/tasks/${taskId}/${name}`, { by: 'soak' }).catch(() => undefined);
    if (res?.status === 200 && name === 'cancel') return;
  }
}

/**
 * Recovered: the API ready again, or for the worker, a fresh capacity report after the fault. One
 * not recovered in RECOVERY_TIMEOUT_MS stops the soak with what it last answered.
 */
async function recovered(cluster: SoakCluster, api: SoakApi, kind: FaultKind, since: number): Promise<void> {
  let last = 'no answer';
  for (const giveUp = Date.now() + RECOVERY_TIMEOUT_MS; Date.now() < giveUp; ) {
    if (kind === 'worker' || kind === 'partition') {
      const res = await api.call('GET', '/api/v1/agents').catch((err: Error) => ({ status: 0, json: err.message }));
      const agents = (res.json as { agents?: { agentId: string; heartbeatAt: string }[] } | undefined)?.agents ?? [];
      if (agents.some((a) => a.agentId === cluster.agentId && Date.parse(a.heartbeatAt) > since)) return;
      last = `GET /api/v1/agents: ${res.status} ${JSON.stringify(res.json)}`;
    } else {
      const res = await fetch(`${cluster.baseUrl}/readyz`).catch((err: Error) => err);
      if (!(res instanceof Error) && res.status === 200) return;
      last = `/readyz: ${res instanceof Error ? res.message : `${res.status} ${await res.text()}`}`;
    }
    await sleep(100);
  }
  throw new Error(`after the ${kind} fault the stack did not recover in ${RECOVERY_TIMEOUT_MS / 1000} s; last: ${last}`);
}

/**
 * What must hold after every part: the chain intact, nothing left in the pause queue or reserved,
 * and neither the API nor the worker having exited on its own.
 */
async function stackChecks(cluster: SoakCluster): Promise<PartResult> {
  const violations: string[] = [];
  const db = createDb({ connectionString: cluster.ownerUrl, max: 1 });
  let line: string;
  try {
    const chain = await verifyChain(db);
    if (!chain.ok) violations.push(`the chain is broken at ${JSON.stringify(chain.firstBroken)}`);
    const queued = await db.query('SELECT task_id FROM pause_queue');
    if (queued.length) violations.push(`${queued.length} rows left in pause_queue`);
    const reserved = await db.query('SELECT task_id FROM reservations');
    if (reserved.length) violations.push(`${reserved.length} reservations left`);
    const crashes = cluster.crashes();
    for (const [part, n] of Object.entries(crashes)) if (n > 0) violations.push(`the ${part} exited on its own ${n} times (started again each time)`);
    line = `\n  chain of ${chain.rows} rows ${chain.ok ? 'intact' : 'broken'}; left: ${queued.length} in pause_queue, ${reserved.length} reservations; exited on their own: API ${crashes.api}, worker ${crashes.worker}`;
  } finally {
    await db.close();
  }
  return { lines: [line], violations, taskIds: [] };
}

type Report = { lost: string[]; duplicated: string[]; repeatedAfterLoss: number; violations: string[] };

async function check(owner: Client, submitted: Submitted[], finals: Map<string, number>, runsDir: string): Promise<Report> {
  const violations: string[] = [];
  const lost = submitted.filter((t) => (finals.get(t.taskId) ?? 0) === 0).map((t) => t.taskId);
  const duplicated = submitted.filter((t) => (finals.get(t.taskId) ?? 0) > 1).map((t) => t.taskId);
  if (lost.length) violations.push(`${lost.length} tasks without a final row: ${lost.slice(0, 5).join(', ')}`);
  if (duplicated.length) violations.push(`${duplicated.length} tasks with more than one final row: ${duplicated.slice(0, 5).join(', ')}`);
  const leftover = pidsRunning(runsDir);
  if (leftover.length) violations.push(`${leftover.length} playbook processes still running`);

  // A second run of a playbook is allowed only where a dispatched row records the lost one.
  const { rows: recordedLosses } = await owner.query<{ task_id: string; losses: number }>(
    `SELECT task_id, count(*) FILTER (WHERE outcome ? 'previousAttemptLost')::int AS losses FROM tasks
      WHERE status = 'dispatched' AND task_id = ANY ($1) GROUP BY task_id`,
    [submitted.map((t) => t.taskId)],
  );
  const losses = new Map(recordedLosses.map((r) => [r.task_id, r.losses]));
  let repeatedAfterLoss = 0;
  for (const task of submitted) {
    const runs = fs.existsSync(task.runsFile) ? fs.readFileSync(task.runsFile, 'utf8').split('\n').filter(Boolean).length : 0;
    if (runs <= 1) continue;
    if (runs - 1 <= (losses.get(task.taskId) ?? 0)) repeatedAfterLoss += runs - 1;
    else violations.push(`${task.taskId} ran ${runs} times with ${losses.get(task.taskId) ?? 0} recorded losses`);
  }
  return { lost, duplicated, repeatedAfterLoss, violations };
}

function faultTable(recoveries: Record<FaultKind, number[]>, submitted: Submitted[], report: Report): string[] {
  const pct = (values: number[], p: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0;
  };
  const lines = ['\n  fault kind   injected   recovery p50   recovery max'];
  for (const kind of FAULT_KINDS) {
    const r = recoveries[kind];
    lines.push(`  ${kind.padEnd(11)}  ${String(r.length).padStart(8)}   ${(pct(r, 0.5) / 1000).toFixed(1).padStart(10)} s   ${(pct(r, 1) / 1000).toFixed(1).padStart(10)} s`);
  }
  const byKind = new Map<string, number>();
  for (const t of submitted) byKind.set(t.kind, (byKind.get(t.kind) ?? 0) + 1);
  lines.push(`\n  tasks ${submitted.length} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')})`);
  lines.push(`  lost ${report.lost.length}, duplicated ${report.duplicated.length}, runs repeated after a recorded loss ${report.repeatedAfterLoss}`);
  return lines;
}

/** Where a task that never ended stands: its last ledger row and its live state. */
async function describeTask(owner: Client, api: SoakApi, taskId: string): Promise<string> {
  const { rows } = await owner.query<{ status: string; outcome: unknown }>(
    'SELECT status, outcome FROM tasks WHERE task_id = $1 ORDER BY chain_seq DESC LIMIT 1',
    [taskId],
  );
  const live = await api.call('GET', `/api/v1/tasks/${taskId}`).catch((err: Error) => ({ status: 0, json: err.message }));
  return `last row ${rows[0] ? `${rows[0].status} ${JSON.stringify(rows[0].outcome)}` : 'none'}; live ${live.status} ${JSON.stringify(live.json)}`;
}

/** Fisher-Yates, from the seeded generator. */
function shuffled<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

main().then(
  // The Temporal runtime's native handles would keep the process up after the last check.
  () => process.exit(process.exitCode ?? 0),
  (err: Error) => {
    console.error(`\nsoak stopped: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
