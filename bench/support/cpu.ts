import fs from 'node:fs';
import os from 'node:os';

/** Linux reports process and machine CPU time in USER_HZ ticks, 100 a second on every mainstream build. */
const MS_PER_TICK = 10;

/**
 * CPU time in ms: this process, the bench's Temporal engine (a dev server, or a server on
 * PostgreSQL with the backends of its databases), the bench database's PostgreSQL backends, the
 * whole machine. From cpuTotals, time spent so far; from cpuBetween, time spent in between.
 */
export type CpuTotals = {
  self: number;
  /** This process's children that it has waited for: the playbooks it ran, wrapper and forks included. */
  children: number;
  devServer: number | null;
  /** A Temporal server on PostgreSQL (`opsledger cluster up`'s), and the backends of its history and visibility databases. */
  temporalServer: number | null;
  temporalPostgres: number | null;
  postgres: number | null;
  machineBusy: number;
  machineAll: number;
  /** Each engine and backend process by pid (readings only), so cpuBetween can match them. */
  processes?: Record<ProcessKind, Map<string, number>>;
};

type ProcessKind = 'devServer' | 'temporalServer' | 'temporalPostgres' | 'postgres';

/** What to look for in /proc: the dev server's scratch folder, the bench database, and a Temporal server on PostgreSQL when there is one. */
export type CpuMatch = { devServer: string; postgres: string; temporalServer?: TemporalServerProcess };

/** A Temporal server the bench brought up: its pid and the databases it keeps history and visibility in. */
export type TemporalServerProcess = { pid: number; databases: string[] };

/**
 * Where a run's CPU went, read from /proc: the dev server is the process whose command line names
 * the bench's SQLite file, a Temporal server on PostgreSQL the pid it was started as (its own
 * backends counted with it, since they are its storage as SQLite is the dev server's), PostgreSQL
 * the backends connected to the bench's database. Machine busy time shows how much else was
 * running on this shared host.
 */
export function cpuTotals(match: CpuMatch): CpuTotals {
  const processes: Record<ProcessKind, Map<string, number>> = {
    devServer: new Map(),
    temporalServer: new Map(),
    temporalPostgres: new Map(),
    postgres: new Map(),
  };
  for (const pid of processIds()) {
    const kind = kindOf(pid, readOr(`/proc/${pid}/cmdline`).replace(/\0/g, ' '), match);
    if (kind) processes[kind].set(pid, processMs(pid));
  }
  const total = (kind: ProcessKind) => (processes[kind].size ? sum(processes[kind].values()) : null);
  const usage = process.cpuUsage();
  return {
    self: (usage.user + usage.system) / 1000,
    children: childrenMs(),
    devServer: total('devServer'),
    temporalServer: total('temporalServer'),
    temporalPostgres: total('temporalPostgres'),
    postgres: total('postgres'),
    ...machineMs(),
    processes,
  };
}

function kindOf(pid: string, cmdline: string, match: CpuMatch): ProcessKind | undefined {
  if (cmdline.includes(match.devServer) && cmdline.includes('start-dev')) return 'devServer';
  if (match.temporalServer && Number(pid) === match.temporalServer.pid) return 'temporalServer';
  if (!cmdline.startsWith('postgres: ')) return undefined;
  if (cmdline.includes(` ${match.postgres} `)) return 'postgres';
  if (match.temporalServer?.databases.some((database) => cmdline.includes(` ${database} `))) return 'temporalPostgres';
  return undefined;
}

/**
 * CPU used between two readings, process by process. A process that ended in between is not
 * counted (its time is gone from /proc), so the PostgreSQL figure is a lower bound when the pool
 * closed connections meanwhile.
 */
export function cpuBetween(before: CpuTotals, after: CpuTotals): CpuTotals {
  const used = (kind: ProcessKind) => {
    const [b, a] = [before.processes?.[kind], after.processes?.[kind]];
    if (!b || !a) return before[kind] === null || after[kind] === null ? null : Math.max(0, after[kind] - before[kind]);
    return a.size === 0 ? null : sum([...a].map(([pid, ms]) => ms - (b.get(pid) ?? 0)));
  };
  return {
    self: after.self - before.self,
    children: after.children - before.children,
    devServer: used('devServer'),
    temporalServer: used('temporalServer'),
    temporalPostgres: used('temporalPostgres'),
    postgres: used('postgres'),
    machineBusy: after.machineBusy - before.machineBusy,
    machineAll: after.machineAll - before.machineAll,
  };
}

/** Two spans' CPU together (readings by process are not kept: this is a sum, not a reading). */
export function addCpu(a: CpuTotals, b: CpuTotals): CpuTotals {
  const plus = (x: number | null, y: number | null) => (x === null && y === null ? null : (x ?? 0) + (y ?? 0));
  return {
    self: a.self + b.self,
    children: a.children + b.children,
    devServer: plus(a.devServer, b.devServer),
    temporalServer: plus(a.temporalServer, b.temporalServer),
    temporalPostgres: plus(a.temporalPostgres, b.temporalPostgres),
    postgres: plus(a.postgres, b.postgres),
    machineBusy: a.machineBusy + b.machineBusy,
    machineAll: a.machineAll + b.machineAll,
  };
}

/** "CPU ms a task: bench process 40, dev server 30, postgres 12; machine 95% busy, 40% by other processes". */
export function describeCpu(used: CpuTotals, tasks: number): string {
  const perTask = (ms: number | null) => (ms === null ? 'n/a' : (ms / tasks).toFixed(1));
  const busyPct = (100 * used.machineBusy) / used.machineAll;
  const ours = totalMs(used);
  const othersPct = (100 * Math.max(0, used.machineBusy - ours)) / used.machineAll;
  return (
    `CPU ms a task: bench process ${perTask(used.self)}${used.children ? `, its child processes ${perTask(used.children)}` : ''},` +
    ` ${engineCpu(used, perTask)}, postgres ${perTask(used.postgres)};` +
    ` machine (${os.availableParallelism()} cores) ${busyPct.toFixed(0)}% busy, ${othersPct.toFixed(0)}% by other processes`
  );
}

/** The dev server's share, or a Temporal server's and its own PostgreSQL backends' when the bench runs on one. */
function engineCpu(used: CpuTotals, perTask: (ms: number | null) => string): string {
  if (used.temporalServer === null) return `dev server ${perTask(used.devServer)}`;
  return `Temporal server ${perTask(used.temporalServer)}, its postgres ${perTask(used.temporalPostgres)}`;
}

/** Everything the bench can attribute to a run: itself, its children, the Temporal engine and the bench database's backends. */
export function totalMs(used: CpuTotals): number {
  return used.self + used.children + (used.devServer ?? 0) + (used.temporalServer ?? 0) + (used.temporalPostgres ?? 0) + (used.postgres ?? 0);
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

function processIds(): string[] {
  try {
    return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return []; // no /proc (not Linux): only this process's own figure
  }
}

function statFields(pid: string): string[] {
  // Fields after the parenthesised command name, from the state (3rd) on.
  const stat = readOr(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

function processMs(pid: string): number {
  // utime is the 14th field, stime the 15th.
  const fields = statFields(pid);
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * MS_PER_TICK;
}

function childrenMs(): number {
  // cutime is the 16th field, cstime the 17th: children that ended and were waited for.
  const fields = statFields('self');
  return (Number(fields[13] ?? 0) + Number(fields[14] ?? 0)) * MS_PER_TICK;
}

function machineMs(): { machineBusy: number; machineAll: number } {
  const ticks = (readOr('/proc/stat').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const all = ticks.slice(0, 8).reduce((sum, t) => sum + t, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { machineBusy: (all - idle) * MS_PER_TICK, machineAll: all * MS_PER_TICK };
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return ''; // the process ended while we looked
  }
}
