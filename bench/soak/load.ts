import path from 'node:path';
import { Client } from 'pg';
import { projectRoot } from '../../src/paths';
import { pidsRunning } from '../../test/support/processes';
import type { SoakApi } from './api';
import type { Canary } from './canary';
import type { SoakCluster } from './cluster';
import { forEachAtMost, peakRss, rowCounts, until, untilAllEnded, type PartResult, type RowCounts } from './part';

/**
 * The load part of `npm run soak`, on the stack the fault part leaves (no fault meanwhile): a burst
 * of tasks submitted at once through the API, then a batch submitted while dispatch is held, all
 * of it in the pause queue before a single release. Each must end once, succeed (its playbook
 * checks it got the run's secret) and be dispatched once (again only after a run recorded as
 * lost), the held ones none before the release.
 * The figures: tasks per second from the first submit (the release) to the last final row, and the
 * peak memory of the API and worker processes meanwhile.
 *
 * Admission bounds the figure: the agent takes a task while its measured load (load average over
 * cores) plus the CPU reserved for what it runs stays under the soak's 1000% threshold, the highest
 * there is. Each load task asks for a quarter of a CPU: on an idle machine of two cores up to some
 * 70 run at once, at a load average of 19 (950%) four. Far more at once would only queue for the
 * CPU, each holding memory. The playbook is soak-quick.yml, one local check, so a task costs about
 * what ansible-playbook's start costs.
 */

export type LoadSizes = { burst: number; held: number; timeoutMs: number };

const LOAD_NEEDS = { cpu: 0.25, memoryMb: 64, gpuVramMb: 0 };
const QUICK_PLAYBOOK = 'soak-quick.yml';
// One connection each is a file descriptor: a batch as large as the held one goes out this many at a time.
const HELD_SUBMITS_AT_ONCE = 200;

export async function runLoad(cluster: SoakCluster, api: SoakApi, canary: Canary, tag: string, sizes: LoadSizes): Promise<PartResult> {
  const owner = new Client({ connectionString: cluster.ownerUrl });
  await owner.connect();
  try {
    const burst = await submittedInOneBurst(cluster, api, owner, taskIds(`${tag}-burst`, sizes.burst), canary, sizes.timeoutMs);
    const held = await heldThenReleased(cluster, api, owner, taskIds(`${tag}-held`, sizes.held), canary, sizes.timeoutMs);
    return {
      lines: [
        '\n  load     tasks   submitted in   all queued in   ended in   tasks/s   API peak RSS   worker peak RSS   runs lost, run again',
        burst.line,
        held.line,
      ],
      violations: [...burst.violations, ...held.violations, ...playbooksLeft()],
      taskIds: [...burst.taskIds, ...held.taskIds],
    };
  } finally {
    await owner.end();
  }
}

type Stage = { line: string; violations: string[]; taskIds: string[] };

async function submittedInOneBurst(cluster: SoakCluster, api: SoakApi, owner: Client, ids: string[], canary: Canary, timeoutMs: number): Promise<Stage> {
  const memory = peakRss(cluster.pids);
  const started = Date.now();
  await Promise.all(ids.map((id) => api.submit(quickTask(id, canary))));
  const submittedMs = Date.now() - started;
  const counts = await untilAllEnded(owner, ids, timeoutMs);
  const peaks = memory.stop();
  return {
    line: figuresLine('burst', ids.length, submittedMs, undefined, started, counts, peaks),
    violations: endedOnceEach('burst', ids, counts),
    taskIds: ids,
  };
}

async function heldThenReleased(cluster: SoakCluster, api: SoakApi, owner: Client, ids: string[], canary: Canary, timeoutMs: number): Promise<Stage> {
  const violations: string[] = [];
  const memory = peakRss(cluster.pids);
  await dispatch(api, 'hold');
  const started = Date.now();
  let submittedMs: number;
  let queuedMs: number;
  try {
    await forEachAtMost(HELD_SUBMITS_AT_ONCE, ids, (id) => api.submit(quickTask(id, canary)));
    submittedMs = Date.now() - started;
    await until(`${ids.length} held tasks in the pause queue`, async () => (await heldInQueue(owner, ids)) === ids.length, timeoutMs);
    queuedMs = Date.now() - started;
    const early = [...(await rowCounts(owner, ids)).values()].filter((c) => c.dispatched > 0).length;
    if (early > 0) violations.push(`held: ${early} tasks dispatched while dispatch was held`);
  } finally {
    await dispatch(api, 'release');
  }
  const released = Date.now();
  const counts = await untilAllEnded(owner, ids, timeoutMs);
  const peaks = memory.stop();
  return {
    line: figuresLine('held', ids.length, submittedMs, queuedMs, released, counts, peaks),
    violations: [...violations, ...endedOnceEach('held', ids, counts)],
    taskIds: ids,
  };
}

/** Every load task has ended: none of their playbooks may still run. */
function playbooksLeft(): string[] {
  const left = pidsRunning(path.join(projectRoot, 'playbooks', QUICK_PLAYBOOK));
  return left.length > 0 ? [`load: ${left.length} playbook processes still running`] : [];
}

function quickTask(taskId: string, canary: Canary) {
  return {
    taskId,
    action: 'deploy',
    services: ['soak-load'],
    playbook: QUICK_PLAYBOOK,
    extraVars: { [`${canary.name}_sha256`]: canary.sha256 },
    secretVars: { [canary.name]: canary.value },
    requirements: LOAD_NEEDS,
  };
}

async function dispatch(api: SoakApi, name: 'hold' | 'release'): Promise<void> {
  const res = await api.call('POST', `/api/v1/dispatch/${name}`, { by: 'soak' });
  if (res.status !== 200) throw new Error(`dispatch ${name} answered ${res.status} ${JSON.stringify(res.json)}`);
}

async function heldInQueue(owner: Client, ids: string[]): Promise<number> {
  const { rows } = await owner.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pause_queue WHERE task_id = ANY ($1) AND reason = 'dispatch_hold'",
    [ids],
  );
  return rows[0]?.n ?? 0;
}

/**
 * One final row, a success (the playbook had its secret) and one dispatch for every task, and a
 * second only after a run recorded as lost to infrastructure: on two cores overloaded on purpose a
 * playbook activity can miss its heartbeat timeout, and the engine runs it again, as it says.
 */
function endedOnceEach(stage: string, ids: string[], counts: Map<string, RowCounts>): string[] {
  const violations: string[] = [];
  const failing = (what: string, broken: (c: RowCounts) => boolean) => {
    const found = ids.filter((id) => broken(counts.get(id) ?? { finals: 0, succeeded: 0, dispatched: 0, lostRuns: 0 }));
    if (found.length > 0) violations.push(`${stage}: ${found.length} tasks ${what}: ${found.slice(0, 5).join(', ')}`);
  };
  failing('without a final row', (c) => c.finals === 0);
  failing('with more than one final row', (c) => c.finals > 1);
  failing('ended without succeeding', (c) => c.finals > 0 && c.succeeded === 0);
  failing('dispatched other than once, less the runs recorded as lost', (c) => c.dispatched - c.lostRuns !== 1);
  return violations;
}

function figuresLine(
  stage: string,
  tasks: number,
  submittedMs: number,
  queuedMs: number | undefined,
  from: number,
  counts: Map<string, RowCounts>,
  peaksMb: Record<string, number>,
): string {
  const lastEnd = Math.max(...[...counts.values()].map((c) => c.endedAt?.getTime() ?? 0));
  const endedS = (lastEnd - from) / 1000;
  const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
  const mb = (name: string) => `${Math.round(peaksMb[name] ?? 0)} MiB`;
  return [
    `  ${stage.padEnd(5)}`,
    String(tasks).padStart(8),
    seconds(submittedMs).padStart(14),
    seconds(queuedMs).padStart(15),
    `${endedS.toFixed(1)} s`.padStart(10),
    (tasks / endedS).toFixed(2).padStart(9),
    mb('api').padStart(14),
    mb('worker').padStart(17),
    String([...counts.values()].reduce((sum, c) => sum + c.lostRuns, 0)).padStart(21),
  ].join(' ');
}

function taskIds(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
}
