import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../paths';

/**
 * A process `cluster up` started, as the state file keeps it. The start time (from /proc) makes a
 * pid that was reused by something else after ours died count as gone, so `down` never signals
 * a stranger.
 */
export type RecordedProcess = { role: 'postgres' | 'temporal' | 'ui' | 'agent' | 'api'; name: string; pid: number; startedAt: string; log: string; port?: number };

/**
 * The kernel's start time of `pid` (clock ticks since boot), or undefined when there is no such
 * process or only its zombie, which a parent that is not reaping (a container's PID 1) leaves.
 */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses: state is field 3, starttime 22.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

export function record(role: RecordedProcess['role'], name: string, pid: number, log: string, port?: number): RecordedProcess {
  const startedAt = startTimeOf(pid);
  if (startedAt === undefined) throw new Error(`${name} exited as soon as it started; see ${log}`);
  return { role, name, pid, startedAt, log, ...(port === undefined ? {} : { port }) };
}

export function isRunning(proc: RecordedProcess): boolean {
  return startTimeOf(proc.pid) === proc.startedAt;
}

/** `opsledger <command>` as its own process and process group, detached from the terminal that ran `up`. */
export function spawnOpsledger(command: 'worker' | 'api', env: NodeJS.ProcessEnv, logFile: string): number {
  return spawnDetached(process.execPath, [path.join(projectRoot, 'bin', 'opsledger.js'), command], { env }, logFile, `opsledger ${command}`);
}

/**
 * `cmd` as its own process group, its output appended to `logFile`: it runs on after `up`
 * exits, and a Ctrl-C in the terminal that ran `up` does not reach it.
 */
export function spawnDetached(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string }, logFile: string, label: string): number {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { ...opts, stdio: ['ignore', log, log], detached: true });
  fs.closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`${label} could not be started; see ${logFile}`);
  return child.pid;
}

/**
 * Stops one recorded process: `signal` (SIGINT is PostgreSQL's fast shutdown), then SIGKILL
 * after `graceMs`. A worker gives running playbooks 30 s on SIGTERM, hence its longer grace.
 */
export async function stopRecorded(proc: RecordedProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!isRunning(proc)) return;
  process.kill(proc.pid, signal);
  const deadline = Date.now() + graceMs;
  while (isRunning(proc)) {
    if (Date.now() > deadline) {
      process.kill(proc.pid, 'SIGKILL');
      while (isRunning(proc)) await new Promise((resolve) => setTimeout(resolve, 100));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
