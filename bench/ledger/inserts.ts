import type { Db } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';
import { ACTIONS, type LedgerEntry } from '../../contracts';
import { cpuBetween, type CpuTotals } from '../support/cpu';
import { AGENTS, SERVICES } from './fixture';
import { describeMachine, machineCpu } from './measure';
import { plainAppender } from './plainTwin';

/**
 * Single-row append throughput: the ledger (chain trigger per row, running totals every 256th row)
 * against tasks_plain, a twin of the same shape, indexes and rows but no triggers, written with
 * the same statement through the same application-role pool.
 */

export const SLICE_MS = 2500;
// Chained and plain alternate in slices, ABBA, so drift in the machine's load hits both alike.
export const SLICE_ORDER = ['chained', 'plain', 'plain', 'chained', 'chained', 'plain', 'plain', 'chained'] as const;
const WARMUP_MS = 1000;
export const WRITERS = 4;
export const CONCURRENT_MS = 5000;

export type Side = (typeof SLICE_ORDER)[number];
export type Throughput = { rows: number; ms: number; perSecond: number; machine: string };

export type InsertFigures = {
  single: Record<Side, Throughput>;
  slices: { side: Side; perSecond: number }[];
  concurrent: Record<Side, Throughput>;
};

/** One writer, alternating sides; then WRITERS writers on each side. */
export async function measureInserts(appDb: Db, stamp: string, database: string, progress: (line: string) => void): Promise<InsertFigures> {
  const ledger = createLedgerRepository(appDb);
  const appenders: Record<Side, (entry: LedgerEntry) => Promise<unknown>> = {
    chained: (entry) => ledger.append(entry),
    plain: plainAppender(appDb),
  };
  const writer = (side: Side, id: string) => {
    const entries = entrySource(`bench-${stamp}-${side}-${id}`);
    return (until: number) => appendUntil(until, appenders[side], entries);
  };
  const single = { chained: writer('chained', 'one'), plain: writer('plain', 'one') };

  for (const side of ['chained', 'plain'] as const) await single[side](performance.now() + WARMUP_MS);
  const totals: Record<Side, { rows: number; ms: number; cpu: CpuTotals[] }> = {
    chained: { rows: 0, ms: 0, cpu: [] },
    plain: { rows: 0, ms: 0, cpu: [] },
  };
  const slices: InsertFigures['slices'] = [];
  for (const side of SLICE_ORDER) {
    const before = machineCpu(database);
    const started = performance.now();
    const rows = await single[side](started + SLICE_MS);
    const ms = performance.now() - started;
    totals[side].rows += rows;
    totals[side].ms += ms;
    totals[side].cpu.push(cpuBetween(before, machineCpu(database)));
    slices.push({ side, perSecond: (rows * 1000) / ms });
  }
  progress(`one writer, slices (rows/s): ${slices.map((s) => `${s.side} ${Math.round(s.perSecond)}`).join(', ')}`);

  const concurrent = {} as Record<Side, Throughput>;
  for (const side of ['chained', 'plain'] as const) {
    const writers = Array.from({ length: WRITERS }, (_, i) => writer(side, `w${i}`));
    const before = machineCpu(database);
    const started = performance.now();
    const rows = (await Promise.all(writers.map((w) => w(started + CONCURRENT_MS)))).reduce((a, b) => a + b, 0);
    const ms = performance.now() - started;
    concurrent[side] = throughput(rows, ms, [cpuBetween(before, machineCpu(database))]);
  }
  return {
    single: { chained: throughput(totals.chained.rows, totals.chained.ms, totals.chained.cpu), plain: throughput(totals.plain.rows, totals.plain.ms, totals.plain.cpu) },
    slices,
    concurrent,
  };
}

async function appendUntil(until: number, append: (entry: LedgerEntry) => Promise<unknown>, entries: () => LedgerEntry): Promise<number> {
  let rows = 0;
  while (performance.now() < until) {
    await append(entries());
    rows += 1;
  }
  return rows;
}

function throughput(rows: number, ms: number, cpu: CpuTotals[]): Throughput {
  return { rows, ms, perSecond: (rows * 1000) / ms, machine: describeMachine(cpu) };
}

/**
 * Rows as a task writes them, three a task: queued with its plan, dispatched, succeeded with
 * the playbook's outcome and resources. Each writer has its own task ids.
 */
function entrySource(prefix: string): () => LedgerEntry {
  let n = 0;
  return (): LedgerEntry => {
    const task = Math.floor(n / 3);
    const stage = n % 3;
    n += 1;
    const service = SERVICES[task % SERVICES.length]!;
    const action = ACTIONS[task % ACTIONS.length]!;
    const agent = AGENTS[task % AGENTS.length]!;
    const base = { taskId: `${prefix}-${task}`, runId: `${prefix}-run-${task}`, seq: stage + 1, action, services: [service] };
    if (stage === 0) {
      return {
        ...base,
        status: 'queued',
        actor: 'orchestrator',
        plan: { steps: ['gather facts', `${action} ${service}`], estimatedDurationS: 120, complexity: 'low', playbook: `${action}.yml`, checkMode: false, priority: 50 },
      };
    }
    if (stage === 1) {
      return { ...base, status: 'dispatched', agent, actor: 'dispatcher', outcome: { attempt: 1, loadPctAtDispatch: 40, overridden: false } };
    }
    const changed = task % 4;
    return {
      ...base,
      status: 'succeeded',
      agent,
      actor: 'opsledger',
      outcome: {
        result: 'succeeded',
        exitCode: 0,
        counts: { ok: 3 + changed, changed, failed: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 },
        keyMessages: [],
        steps: [
          { play: service, task: 'Gathering Facts', status: 'ok', host: agent },
          { play: service, task: `${action} ${service}`, status: changed > 0 ? 'changed' : 'ok', host: agent },
        ],
        outputTail: ['PLAY RECAP *********', `${agent} : ok=${3 + changed} changed=${changed}`],
      },
      resourcesUsed: { cpuTimeS: 12.5, wallTimeS: 40, peakMemoryMb: 512, gpuVramMb: null, agentLoadPctAtDispatch: 40 },
    };
  };
}
