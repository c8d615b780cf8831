import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { projectRoot } from '../../src/paths';
import { cpuBetween } from '../support/cpu';
import { cpuOf, STARTERS, type PipelineContext, type Verdicts } from '../support/pipelineContext';
import { ms, verdict } from '../support/stats';
import { within } from '../support/wait';
import type { OurThroughput } from './throughput';

// Target from the issue.
const RATIO_TARGET = 0.15;

const PEER_DIR = path.join(projectRoot, 'bench', 'peer-dbos');
const PEER_TASKS = 1000;
const PEER_TIMEOUT_MS = 180_000;

type PeerFigures = { tasks: number; seconds: number; tasksPerS: number; cpuMsPerTask: number; audited: number };

/**
 * (5) The peer: DBOS Transact runs the same four-step durable task (capacity read, no-op
 * execute, audit insert, no-op) on the bench's PostgreSQL, from STARTERS concurrent callers, in
 * its own process (bench/peer-dbos, installed on its own). Held against our better throughput run.
 */
export async function dbosPeer(ctx: PipelineContext, ours: OurThroughput, verdicts: Verdicts): Promise<void> {
  console.log(`\n(5) peer: DBOS Transact, ${PEER_TASKS} four-step tasks from ${STARTERS} concurrent callers on the same PostgreSQL`);
  if (!fs.existsSync(path.join(PEER_DIR, 'node_modules', '@dbos-inc', 'dbos-sdk'))) {
    verdicts.push(verdict('throughput ours/DBOS', false, 'not measured: the peer is not installed (npm ci --prefix bench/peer-dbos)'));
    return;
  }
  const child = spawn('node', [path.join(PEER_DIR, 'peer.mjs'), ctx.services.databaseUrl, String(PEER_TASKS), String(STARTERS)], {
    cwd: PEER_DIR,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextLine = async () => (await within(lines.next(), PEER_TIMEOUT_MS, 'the DBOS peer', () => 'no answer')).value as string;
  let peer: PeerFigures;
  let used;
  try {
    if ((await nextLine()) !== 'ready') throw new Error('the DBOS peer did not start');
    // Between its warm-up and its last task, with its connections open at both readings.
    const before = cpuOf(ctx);
    child.stdin.write('go\n');
    peer = JSON.parse(await nextLine()) as PeerFigures;
    used = cpuBetween(before, cpuOf(ctx));
  } finally {
    child.stdin.end();
    await exited;
  }
  const peerPostgresMs = (used.postgres ?? 0) / peer.tasks;
  const peerCpuMs = peer.cpuMsPerTask + peerPostgresMs;
  const ratio = ours.tasksPerS / peer.tasksPerS;
  console.log(
    `  DBOS: ${peer.tasksPerS.toFixed(1)} tasks/s (${peer.seconds.toFixed(2)} s, ${peer.audited} audit rows);` +
      ` CPU a task: its process ${ms(peer.cpuMsPerTask)}, postgres ${ms(peerPostgresMs)}`,
  );
  console.log(
    `  what bounds it: on a CPU-bound machine throughput goes as the inverse of CPU a task; ours costs ${ms(ours.cpuMsPerTask)}` +
      ` (the Temporal server ${ours.devServerMsPerTask === null ? 'n/a' : ms(ours.devServerMsPerTask)} of it, for its workflow tasks and the` +
      ` playbook activity's round trip), DBOS ${ms(peerCpuMs)} (its steps are PostgreSQL writes in its own process),` +
      ` so the ratio tends to about ${(peerCpuMs / ours.cpuMsPerTask).toFixed(2)} here` +
      (ours.devServerMsPerTask === null
        ? ''
        : `; the Temporal server's share alone holds it under ${(peerCpuMs / ours.devServerMsPerTask).toFixed(2)}, however little the worker costs`),
  );
  verdicts.push(
    verdict(
      'throughput ours/DBOS',
      ratio >= RATIO_TARGET && peer.audited === peer.tasks,
      `${ratio.toFixed(2)} (target >= ${RATIO_TARGET}; ours ${ours.tasksPerS.toFixed(1)} tasks/s, DBOS ${peer.tasksPerS.toFixed(1)})`,
    ),
  );
}
