import os from 'node:os';
import { throughput, type ThroughputResult, type ThroughputRun } from './pipeline/throughput';
import { totalMs, type CpuTotals } from './support/cpu';
import { openPipelineContext, type PipelineContext, type Verdicts } from './support/pipelineContext';
import { startBenchServices, type BenchTemporal } from './support/services';
import { within } from './support/wait';

const ENGINE_TIMEOUT_MS = 10 * 60_000;

/** The production engine first, so that the dev server's run has nothing of it still running beside it. */
const ENGINES: { engine: string; temporal: BenchTemporal }[] = [
  { engine: 'Temporal 1.29.1 on PostgreSQL', temporal: { kind: 'on postgres' } },
  { engine: 'dev server (SQLite)', temporal: { kind: 'dev server' } },
];

type EngineRun = { engine: string; result: ThroughputResult; verdicts: Verdicts };

/**
 * `node dist/bench/run.js engines`: the pipeline's throughput phase (ours and the bare baseline)
 * against a Temporal server on PostgreSQL, brought up as `opsledger cluster up` brings it up, then
 * against the dev server, each with a database of its own and torn down before the next; then one
 * table with both side by side.
 */
export async function runEnginesBench(args: string[]): Promise<void> {
  if (args.length > 0) throw new Error(`the engines bench takes no phases (got ${args.join(' ')})`);
  const began = Date.now();
  console.log('engines bench: the pipeline\'s throughput phase against each Temporal engine in turn');
  const runs: EngineRun[] = [];
  for (const { engine, temporal } of ENGINES) runs.push(await measureEngine(engine, temporal));
  console.log(`\nside by side (${((Date.now() - began) / 1000).toFixed(0)} s in all; ours / bare in each cell)`);
  console.log(sideBySide(runs));
  for (const { engine, verdicts } of runs) {
    console.log(`\n${engine}`);
    for (const line of verdicts) console.log(`  ${line}`);
  }
}

async function measureEngine(engine: string, temporal: BenchTemporal): Promise<EngineRun> {
  console.log(`\n${engine}: starting its PostgreSQL database and Temporal`);
  const services = await startBenchServices(temporal);
  let ctx: PipelineContext | undefined;
  try {
    ctx = await openPipelineContext(services);
    const verdicts: Verdicts = [];
    const result = await within(throughput(ctx, verdicts), ENGINE_TIMEOUT_MS, `the throughput phase on ${engine}`, () => `${verdicts.length} figures done`);
    return { engine, result, verdicts };
  } finally {
    console.log(`${engine}: stopping it and dropping its databases`);
    await ctx?.statsDb.close().catch(() => undefined);
    await services.close();
  }
}

type Row = [label: string, cell: (run: EngineRun) => string];

const perSide = (figure: (side: ThroughputRun['side']) => string) => `${figure('ours')} / ${figure('bare')}`;

/** A side's better run by tasks/s, as the pipeline bench reports it. */
const fastest = (result: ThroughputResult, side: ThroughputRun['side']) =>
  result.runs.filter((r) => r.side === side).reduce((best, r) => (r.tasksPerS > best.tasksPerS ? r : best));

/** A side's cheaper run by CPU a task, whose split by process the table shows. */
const cheapest = (result: ThroughputResult, side: ThroughputRun['side']) =>
  result.runs.filter((r) => r.side === side).reduce((best, r) => (r.cpuMsPerTask < best.cpuMsPerTask ? r : best));

const cpuCell = (pick: (used: CpuTotals) => number | null) => (run: EngineRun) =>
  perSide((side) => {
    const cheaper = cheapest(run.result, side);
    const value = pick(cheaper.used);
    return value === null ? '-' : (value / cheaper.taskIds.length).toFixed(1);
  });

const ROWS: Row[] = [
  ['tasks/s (better of two runs)', (run) => perSide((side) => fastest(run.result, side).tasksPerS.toFixed(1))],
  ['ratio ours/bare', (run) => (fastest(run.result, 'ours').tasksPerS / fastest(run.result, 'bare').tasksPerS).toFixed(2)],
  ['CPU ms a task (cheaper run)', cpuCell((used) => totalMs(used))],
  ['  bench process (worker, driver)', cpuCell((used) => used.self + used.children)],
  ['  Temporal server process', cpuCell((used) => used.temporalServer ?? used.devServer)],
  ["  Temporal's PostgreSQL backends", cpuCell((used) => used.temporalPostgres)],
  ["  the ledger's PostgreSQL backends", cpuCell((used) => used.postgres)],
  [`machine busy (${os.availableParallelism()} cores), by others`, machineCell],
  ['history events a task', (run) => `${run.result.shape.events} / ${run.result.bareShape.events}`],
  ['workflow tasks a task', (run) => `${run.result.shape.workflowTasks} / ${run.result.bareShape.workflowTasks}`],
  ['tasks that did not succeed', (run) => perSide((side) => String(run.result.runs.filter((r) => r.side === side).reduce((n, r) => n + r.failed, 0)))],
];

/** How busy the machine was in each side's cheaper run, and how much of it was not the bench's. */
function machineCell(run: EngineRun): string {
  return perSide((side) => {
    const { used } = cheapest(run.result, side);
    const pct = (ms: number) => `${((100 * ms) / used.machineAll).toFixed(0)}%`;
    return `${pct(used.machineBusy)}, ${pct(Math.max(0, used.machineBusy - totalMs(used)))}`;
  });
}

function sideBySide(runs: EngineRun[]): string {
  const table = [['', ...runs.map((run) => run.engine)], ...ROWS.map(([label, cell]) => [label, ...runs.map(cell)])];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table.map((row) => `  ${row.map((cell, column) => cell.padEnd(widths[column]!)).join('   ')}`.trimEnd()).join('\n');
}
