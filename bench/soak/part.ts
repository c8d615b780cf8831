import fs from 'node:fs';
import type { Client } from 'pg';
import { FINAL_STATUSES } from '../../contracts';

/** What a part of the soak hands back: lines for the table, broken checks, the tasks it made. */
export type PartResult = { lines: string[]; violations: string[]; taskIds: string[] };

/**
 * A task's ledger rows, counted: the checks read one of these per task. `lostRuns` counts the
 * `dispatched` rows that record the run before them as lost to infrastructure.
 */
export type RowCounts = { finals: number; succeeded: number; dispatched: number; lostRuns: number; endedAt?: Date };

export async function rowCounts(owner: Client, taskIds: string[]): Promise<Map<string, RowCounts>> {
  const { rows } = await owner.query<{ task_id: string; finals: number; succeeded: number; dispatched: number; lost_runs: number; ended_at: Date | null }>(
    `SELECT task_id,
            count(*) FILTER (WHERE status = ANY ($2))::int AS finals,
            count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
            count(*) FILTER (WHERE status = 'dispatched')::int AS dispatched,
            count(*) FILTER (WHERE status = 'dispatched' AND outcome ? 'previousAttemptLost')::int AS lost_runs,
            max(created_at) FILTER (WHERE status = ANY ($2)) AS ended_at
       FROM tasks WHERE task_id = ANY ($1) GROUP BY task_id`,
    [taskIds, FINAL_STATUSES],
  );
  return new Map(
    rows.map((r) => [r.task_id, { finals: r.finals, succeeded: r.succeeded, dispatched: r.dispatched, lostRuns: r.lost_runs, endedAt: r.ended_at ?? undefined }]),
  );
}

/**
 * Waits until every task has a final row, or the timeout; what has none by then is lost. Returns
 * the counts as they stood when it stopped waiting.
 */
export async function untilAllEnded(owner: Client, taskIds: string[], timeoutMs: number): Promise<Map<string, RowCounts>> {
  for (const giveUp = Date.now() + timeoutMs; ; ) {
    const counts = await rowCounts(owner, taskIds);
    if (taskIds.every((id) => (counts.get(id)?.finals ?? 0) > 0) || Date.now() > giveUp) return counts;
    await sleep(500);
  }
}

/** Waits for a condition, checked twice a second; one that does not hold by the timeout stops the soak, naming it. */
export async function until(what: string, holds: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  for (const giveUp = Date.now() + timeoutMs; !(await holds()); ) {
    if (Date.now() > giveUp) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(500);
  }
}

/**
 * The largest resident set each process had while sampled (every 250 ms): VmRSS from
 * /proc/<pid>/status, of the process itself, not of the playbooks it starts.
 */
export function peakRss(pids: () => Record<string, number | undefined>): { stop(): Record<string, number> } {
  const peakKb: Record<string, number> = {};
  const sample = () => {
    for (const [name, pid] of Object.entries(pids())) {
      if (pid !== undefined) peakKb[name] = Math.max(peakKb[name] ?? 0, residentKb(pid));
    }
  };
  sample();
  const timer = setInterval(sample, 250);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return Object.fromEntries(Object.entries(peakKb).map(([name, kb]) => [name, kb / 1024]));
    },
  };
}

function residentKb(pid: number): number {
  try {
    const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
    return Number(line?.split(/\s+/)[1] ?? 0);
  } catch {
    // Between a kill and its restart there is no such process.
    return 0;
  }
}

/** Runs `work` on every item, at most `limit` at a time. */
export async function forEachAtMost<T>(limit: number, items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
