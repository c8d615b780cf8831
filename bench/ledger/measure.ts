import type { QueryResultRow } from 'pg';
import type { Db } from '../../src/db/pool';
import { cpuTotals, type CpuTotals } from '../support/cpu';
import { percentile } from '../support/stats';

/** A statement as a query function sent it, and how long it took. */
export type Statement = { text: string; values: unknown[]; ms: number };

/**
 * The same Db, also keeping every statement sent through it, so that the statements of a slow
 * call can be explained afterwards exactly as the query layer wrote them.
 */
export function recordingDb(db: Db): { db: Db; take(): Statement[] } {
  let statements: Statement[] = [];
  return {
    db: {
      ...db,
      async query<R extends QueryResultRow>(text: string, values?: unknown[]) {
        const started = performance.now();
        const rows = await db.query<R>(text, values);
        statements.push({ text, values: values ?? [], ms: performance.now() - started });
        return rows;
      },
    },
    take() {
      const taken = statements;
      statements = [];
      return taken;
    },
  };
}

export type Timings = { p50: number; p95: number; max: number; n: number };

export function summarize(samplesMs: number[]): Timings {
  return {
    p50: percentile(samplesMs, 50),
    p95: percentile(samplesMs, 95),
    max: Math.max(...samplesMs),
    n: samplesMs.length,
  };
}

export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/** Runs `work` `times` times in a row; the durations in ms. */
export async function repeatTimed(times: number, work: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < times; i += 1) samples.push((await timed(work)).ms);
  return samples;
}

/** EXPLAIN (ANALYZE, BUFFERS) of a recorded statement, as the plan's text lines. */
export async function explainAnalyze(db: Db, statement: Statement): Promise<string[]> {
  const rows = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`, statement.values);
  return rows.map((r) => r['QUERY PLAN']);
}

/** A small seeded generator (mulberry32): the same parameter sequence on every run. */
export function seededRandom(seed: number): { int(n: number): number; pick<T>(items: readonly T[]): T; chance(p: number): boolean } {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { int, pick: (items) => items[int(items.length)]!, chance: (p) => next() < p };
}

export function fmtMs(value: number): string {
  return value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(2)} ms`;
}

/** CPU used so far by the machine, this process and the bench database's backends. */
export function machineCpu(database: string): CpuTotals {
  // No dev server in this bench: a pattern no command line holds leaves that figure out.
  return cpuTotals({ devServer: '\u0000', postgres: database });
}

/** Where the machine's CPU went: "machine 95% busy: bench process 10%, its postgres backends 30%, others 55%". */
export function describeMachine(samples: CpuTotals[]): string {
  const sum = (pick: (c: CpuTotals) => number | null) => samples.reduce((total, c) => total + (pick(c) ?? 0), 0);
  const all = sum((c) => c.machineAll);
  const pct = (ms: number) => `${Math.round((100 * ms) / all)}%`;
  const busy = sum((c) => c.machineBusy);
  const self = sum((c) => c.self);
  const postgres = sum((c) => c.postgres);
  return `machine ${pct(busy)} busy: bench process ${pct(self)}, its postgres backends ${pct(postgres)}, others ${pct(Math.max(0, busy - self - postgres))}`;
}
