import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { createDb } from '../../src/db/pool';
import { logger } from '../../src/logger';
import { verifyChain } from '../../src/ledger/verify';
import { pidsRunning } from '../../test/support/processes';
import { FAULT_KINDS, startSoakCluster, type FaultKind, type SoakCluster } from './cluster';
import { mulberry32 } from '../../test/support/seeded';

/**
 * `npm run soak`: a stream of tasks through the stack of ./cluster.ts (some quick, some working
 * for seconds, some pausing for capacity, some cancelled, some overridden) while faults are
 * injected at seeded moments: SIGKILL and restart of the worker, the API, the Temporal dev server
 * and PostgreSQL, and the worker frozen for seconds. Then every task must end, and the promises
 * are checked: one final row each, an intact chain, nothing left in the pause queue or reserved,
 * no playbook process left, no playbook run twice unless the ledger records the lost run.
 *
 * SOAK_SEED (replays a run), SOAK_FAULTS (per kind, default 20), SOAK_FAULT_EVERY_MS (default 4000),
 * SOAK_DRAIN_TIMEOUT_S (how long every task gets to end after the last fault, default 900).
 * Exit 0 when every check holds, 1 otherwise.
 */

const SEED = Number(process.env.SOAK_SEED ?? 20261201);
const FAULTS_PER_KIND = Number(process.env.SOAK_FAULTS ?? 20);
const FAULT_EVERY_MS = Number(process.env.SOAK_FAULT_EVERY_MS ?? 4000);
const DRAIN_TIMEOUT_MS = Number(process.env.SOAK_DRAIN_TIMEOUT_S ?? 900) * 1000;
const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
// A part that comes back in this time has recovered; past it the soak stops, saying what did not.
const RECOVERY_TIMEOUT_MS = 180_000;

type Kind = 'quick' | 'working' | 'capacity' | 'cancelled' | 'overridden';
type Submitted = { taskId: string; kind: Kind; runsFile: string };

async function main(): Promise<void> {
  logger.level = 'error';
  const random = mulberry32(SEED);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-soak-'));
  const runsDir = path.join(scratch, 'runs');
  fs.mkdirSync(runsDir);
  console.log(`soak: seed ${SEED}, ${FAULTS_PER_KIND} faults of each kind (${FAULT_KINDS.join(', ')}), one every ${FAULT_EVERY_MS} ms`);
  const cluster = await startSoakCluster(scratch);
  try {
    const agentMemoryMb = await agentMemory(cluster);
    const submitted: Submitted[] = [];
    const recoveries: Record<FaultKind, number[]> = { worker: [], api: [], temporal: [], postgres: [], partition: [] };
    let faulting = true;

    const traffic = (async () => {
      for (let n = 0; faulting; n++) {
        const kind = (['quick', 'working', 'working', 'capacity', 'capacity', 'cancelled', 'overridden'] as const)[Math.floor(random() * 7)]!;
        const task = { taskId: `soak-${SEED}-${n}`, kind, runsFile: path.join(runsDir, `soak-${SEED}-${n}`) };
        await submit(cluster, task, agentMemoryMb, random);
        submitted.push(task);
        if (kind === 'cancelled' || kind === 'overridden') void command(cluster, task.taskId, kind === 'cancelled' ? 'cancel' : 'override');
        await sleep(200 + random() * 600);
      }
    })();

    const schedule = shuffled(FAULT_KINDS.flatMap((kind) => Array.from({ length: FAULTS_PER_KIND }, () => kind)), random);
    for (const [i, kind] of schedule.entries()) {
      await sleep(FAULT_EVERY_MS * (0.5 + random()));
      const started = Date.now();
      if (kind === 'partition') await cluster.partition(2000 + random() * 6000);
      else await cluster.kill(kind);
      await recovered(cluster, kind, started);
      recoveries[kind].push(Date.now() - started);
      process.stdout.write(`\r  fault ${i + 1}/${schedule.length} (${kind}), ${submitted.length} tasks submitted   `);
    }
    faulting = false;
    await traffic;
    console.log(`\n  draining ${submitted.length} tasks`);

    const owner = new Client({ connectionString: cluster.ownerUrl });
    await owner.connect();
    try {
      const finals = await drain(owner, submitted.map((t) => t.taskId));
      const report = await check(owner, cluster, submitted, finals, runsDir);
      printTable(recoveries, submitted, report);
      process.exitCode = report.violations.length === 0 ? 0 : 1;
      for (const v of report.violations) console.log(`  VIOLATION ${v}`);
      for (const taskId of report.lost.slice(0, 10)) console.log(`  lost ${taskId}: ${await describeTask(owner, cluster, taskId)}`);
    } finally {
      await owner.end();
    }
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

/** The worker's agent as it reported itself: the memory the capacity-bound tasks are sized by. */
async function agentMemory(cluster: SoakCluster): Promise<number> {
  for (const giveUp = Date.now() + 180_000; Date.now() < giveUp; ) {
    const res = await call(cluster, 'GET', '/api/v1/agents').catch(() => undefined);
    const agent = (res?.json as { agents?: { agentId: string; live: boolean; memoryTotalMb: number }[] } | undefined)?.agents?.find((a) => a.live);
    if (agent) return agent.memoryTotalMb;
    await sleep(100);
  }
  throw new Error('the worker never reported its capacity: see worker.log in the scratch folder');
}

/** Submits until the API takes it: an orchestrator retries the same task id, which is idempotent. */
async function submit(cluster: SoakCluster, task: Submitted, memoryMb: number, random: () => number): Promise<void> {
  const seconds = { quick: 0.2, working: 1 + random() * 4, capacity: 2, cancelled: 30, overridden: 1 }[task.kind];
  // Two capacity-bound tasks fit the agent at once; an overridden one fits only an idle agent.
  const needs = { capacity: Math.floor(memoryMb * 0.4), overridden: Math.floor(memoryMb * 0.95) } as Partial<Record<Kind, number>>;
  const body = {
    taskId: task.taskId,
    action: 'deploy',
    services: ['soak'],
    playbook: 'soak-step.yml',
    extraVars: { runs_file: task.runsFile, seconds: Number(seconds.toFixed(2)) },
    ...(needs[task.kind] ? { requirements: { memoryMb: needs[task.kind] } } : {}),
  };
  for (;;) {
    const res = await call(cluster, 'POST', '/api/v1/tasks', body).catch(() => undefined);
    if (res && (res.status === 202 || res.status === 200)) return;
    if (res && res.status < 500 && res.status !== 429) throw new Error(`submit of ${task.taskId} refused: ${res.status} ${JSON.stringify(res.json)}`);
    await sleep(200);
  }
}

/**
 * An operator command, as an operator would give it: again while the stack is down or the task is
 * not waiting yet (a 409 before its first admission), and, for an override, again whenever the
 * task waits anew (a run lost to a fault sends it back through admission, and an override applies
 * to one dispatch), until the task has ended.
 */
async function command(cluster: SoakCluster, taskId: string, name: 'cancel' | 'override'): Promise<void> {
  for (const giveUp = Date.now() + 10 * 60_000; Date.now() < giveUp; ) {
    await sleep(500);
    const state = await call(cluster, 'GET', `/api/v1/tasks/${taskId}`).catch(() => undefined);
    const status = (state?.json as { status?: string } | undefined)?.status ?? '';
    if (FINAL.includes(status)) return;
    if (name === 'override' && status !== 'paused' && status !== 'queued') continue;
    const res = await call(cluster, 'POST', `/api/v1/tasks/${taskId}/${name}`, { by: 'soak' }).catch(() => undefined);
    if (res?.status === 200 && name === 'cancel') return;
  }
}

/**
 * Recovered: the API ready again, or for the worker, a fresh capacity report after the fault. One
 * not recovered in RECOVERY_TIMEOUT_MS stops the soak with what it last answered.
 */
async function recovered(cluster: SoakCluster, kind: FaultKind, since: number): Promise<void> {
  let last = 'no answer';
  for (const giveUp = Date.now() + RECOVERY_TIMEOUT_MS; Date.now() < giveUp; ) {
    if (kind === 'worker' || kind === 'partition') {
      const res = await call(cluster, 'GET', '/api/v1/agents').catch((err: Error) => ({ status: 0, json: err.message }));
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

/** Waits until every submitted task has a final row; what has none by the timeout is lost. */
async function drain(owner: Client, taskIds: string[]): Promise<Map<string, number>> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    const { rows } = await owner.query<{ task_id: string; finals: number }>(
      `SELECT task_id, count(*) FILTER (WHERE status = ANY ($2))::int AS finals FROM tasks WHERE task_id = ANY ($1) GROUP BY task_id`,
      [taskIds, FINAL],
    );
    const finals = new Map(rows.map((r) => [r.task_id, r.finals]));
    if (taskIds.every((id) => (finals.get(id) ?? 0) > 0) || Date.now() > deadline) return finals;
    await sleep(500);
  }
}

type Report = { lost: string[]; duplicated: string[]; repeatedAfterLoss: number; violations: string[] };

async function check(owner: Client, cluster: SoakCluster, submitted: Submitted[], finals: Map<string, number>, runsDir: string): Promise<Report> {
  const violations: string[] = [];
  const lost = submitted.filter((t) => (finals.get(t.taskId) ?? 0) === 0).map((t) => t.taskId);
  const duplicated = submitted.filter((t) => (finals.get(t.taskId) ?? 0) > 1).map((t) => t.taskId);
  if (lost.length) violations.push(`${lost.length} tasks without a final row: ${lost.slice(0, 5).join(', ')}`);
  if (duplicated.length) violations.push(`${duplicated.length} tasks with more than one final row: ${duplicated.slice(0, 5).join(', ')}`);

  const db = createDb({ connectionString: cluster.ownerUrl, max: 1 });
  try {
    const chain = await verifyChain(db);
    if (!chain.ok) violations.push(`the chain is broken at ${JSON.stringify(chain.firstBroken)}`);
  } finally {
    await db.close();
  }
  const queued = (await owner.query('SELECT task_id FROM pause_queue')).rows;
  if (queued.length) violations.push(`${queued.length} rows left in pause_queue`);
  const reserved = (await owner.query('SELECT task_id FROM reservations')).rows;
  if (reserved.length) violations.push(`${reserved.length} reservations left`);
  const crashes = cluster.crashes();
  for (const [part, n] of Object.entries(crashes)) if (n > 0) violations.push(`the ${part} exited on its own ${n} times (started again each time)`);
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

function printTable(recoveries: Record<FaultKind, number[]>, submitted: Submitted[], report: Report): void {
  const pct = (values: number[], p: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0;
  };
  console.log('\n  fault kind   injected   recovery p50   recovery max');
  for (const kind of FAULT_KINDS) {
    const r = recoveries[kind];
    console.log(`  ${kind.padEnd(11)}  ${String(r.length).padStart(8)}   ${(pct(r, 0.5) / 1000).toFixed(1).padStart(10)} s   ${(pct(r, 1) / 1000).toFixed(1).padStart(10)} s`);
  }
  const byKind = new Map<string, number>();
  for (const t of submitted) byKind.set(t.kind, (byKind.get(t.kind) ?? 0) + 1);
  console.log(`\n  tasks ${submitted.length} (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')})`);
  console.log(`  lost ${report.lost.length}, duplicated ${report.duplicated.length}, runs repeated after a recorded loss ${report.repeatedAfterLoss}`);
  console.log(`  ${report.violations.length === 0 ? 'PASS: every check holds' : `FAIL: ${report.violations.length} checks broken`}`);
}

async function call(cluster: SoakCluster, method: string, pathname: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${cluster.baseUrl}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${cluster.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** Where a task that never ended stands: its last ledger row and its live state. */
async function describeTask(owner: Client, cluster: SoakCluster, taskId: string): Promise<string> {
  const { rows } = await owner.query<{ status: string; outcome: unknown }>(
    'SELECT status, outcome FROM tasks WHERE task_id = $1 ORDER BY chain_seq DESC LIMIT 1',
    [taskId],
  );
  const live = await call(cluster, 'GET', `/api/v1/tasks/${taskId}`).catch((err: Error) => ({ status: 0, json: err.message }));
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main().then(
  // The Temporal runtime's native handles would keep the process up after the last check.
  () => process.exit(process.exitCode ?? 0),
  (err: Error) => {
    console.error(`\nsoak stopped: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
