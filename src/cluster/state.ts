import fs from 'node:fs';
import path from 'node:path';
import type { RecordedProcess } from './processes';
import type { TemporalPorts } from './temporalServer';

/**
 * What `cluster up` started and where, kept in OPSLEDGER_CLUSTER_DIR/cluster.json: `down` stops
 * exactly these processes, and a second `up` keeps the ports and starts only what is not running.
 * It holds no secret (no URL with a password).
 */
export type ClusterState = {
  temporalAddress: string;
  namespace: string;
  temporalPorts: TemporalPorts;
  processes: RecordedProcess[];
};

export const stateFile = (dir: string) => path.join(dir, 'cluster.json');

export function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')) as ClusterState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${stateFile(dir)} is not a cluster state file (${(err as Error).message}); remove it once nothing of that cluster runs`);
  }
}

/** Written through a temporary file, so a `down` never reads half a state. */
export function writeState(dir: string, state: ClusterState): void {
  const temporary = `${stateFile(dir)}.${process.pid}`;
  fs.writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(temporary, stateFile(dir));
}

/** Records `proc` in place of the one of the same name, so a restarted process replaces its dead record. */
export function putProcess(state: ClusterState, proc: RecordedProcess): void {
  state.processes = [...state.processes.filter((p) => p.name !== proc.name), proc];
}

/** Forgets the process `name`, once it is stopped for good. */
export function dropProcess(state: ClusterState, name: string): void {
  state.processes = state.processes.filter((p) => p.name !== name);
}
