import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { appLoginUser, loginUrl } from '../../src/db/appLogin';
import { projectRoot } from '../../src/paths';
import type { TestCluster } from './harness';
import { commandLineOf } from '../support/processes';

/**
 * An agent as a host of its own: a network namespace joined to this one by a veth pair, with an
 * address on each end. The agent reaches Temporal and PostgreSQL only over that link, through a
 * forwarder on the host end (both servers listen on 127.0.0.1, which a namespace cannot reach);
 * cutting the link is taking the host end down, as a pulled cable would.
 */
export type AgentHost = {
  agentId: string;
  address: string;
  worker?: ChildProcess;
  /** `opsledger worker` inside the namespace, with `extraEnv` over the cluster's agents' environment. */
  startWorker(extraEnv?: NodeJS.ProcessEnv): void;
  /** How the worker's last try to complete `taskId`'s activity ended, as its log says; undefined while it has not. */
  completionOutcome(taskId: string): CompletionOutcome | undefined;
  /** Whether an ansible-playbook runs in its namespace. */
  playbookRunning(): boolean;
  /** The last `lines` lines of its worker's log, colour codes removed: what a failed wait shows. */
  logTail(lines: number): string;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
};

/**
 * refused: Temporal answered NotFound (that attempt had timed out, or the workflow had ended);
 * abandoned: the SDK gave up on a network error, after which it never sends that completion.
 */
export type CompletionOutcome = 'refused' | 'abandoned';

/**
 * The SDK's own warnings, which it writes to stderr in its own format (colour codes included). A
 * refusal carries the task token, whose bytes hold the workflow id, which is the task id; a
 * network error carries none, so it is this worker's only activity that the caller knows of.
 */
function completionOutcomeIn(log: string, taskId: string): CompletionOutcome | undefined {
  for (const line of withoutColour(log).split('\n')) {
    if (line.includes('Network error while completing activity')) return 'abandoned';
    const token = /Activity not found on completion.*task_token=TaskToken\(([A-Za-z0-9+/=]+)\)/.exec(line)?.[1];
    if (token && Buffer.from(token, 'base64').includes(taskId)) return 'refused';
  }
  return undefined;
}

const withoutColour = (log: string) => log.replace(/\x1b\[[0-9;]*m/g, '');

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Whether this machine lets us make namespaces (root, and a kernel that allows it). */
export function canMakeNetworkNamespaces(): boolean {
  const probe = `olc-probe-${process.pid}`;
  try {
    ip('netns', 'add', probe);
    ip('netns', 'del', probe);
    return true;
  } catch {
    return false;
  }
}

/**
 * Host `index` (1…) of this run: namespace olc-<pid>-<index>, link 10.<a>.<b>.0/30 with the host
 * end .1 and the agent end .2; names and subnet come from the pid, so two runs at once rarely collide.
 */
export async function startAgentHost(cluster: TestCluster, agentId: string, index: number): Promise<AgentHost> {
  const netns = `olc-${process.pid}-${index}`;
  const [hostEnd, agentEnd] = [`olh${process.pid % 100000}${index}`, `ola${process.pid % 100000}${index}`];
  const subnet = `10.231.${(process.pid * 8 + index) % 256}`;
  const [hostAddress, address] = [`${subnet}.1`, `${subnet}.2`];
  ip('netns', 'add', netns);
  ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', agentEnd);
  ip('link', 'set', agentEnd, 'netns', netns);
  ip('addr', 'add', `${hostAddress}/30`, 'dev', hostEnd);
  ip('link', 'set', hostEnd, 'up');
  ip('netns', 'exec', netns, 'ip', 'addr', 'add', `${address}/30`, 'dev', agentEnd);
  ip('netns', 'exec', netns, 'ip', 'link', 'set', agentEnd, 'up');
  ip('netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up');

  const temporalPort = cluster.state().temporalPorts.frontend;
  const database = new URL(cluster.env.DATABASE_URL ?? `postgresql://postgres@127.0.0.1:${cluster.env.OPSLEDGER_EMBEDDED_PG_PORT}/opsledger`);
  const forwarders = [await forward(hostAddress, '127.0.0.1', temporalPort), await forward(hostAddress, database.hostname, Number(database.port || 5432))];
  const dir = cluster.env.OPSLEDGER_CLUSTER_DIR!;
  const read = (name: string) => fs.readFileSync(path.join(dir, name), 'utf8').trim();
  const appUrl = new URL(loginUrl(database.toString(), { user: appLoginUser(database.pathname.slice(1)), password: read('db-app-password') }));
  appUrl.host = `${hostAddress}:${forwarders[1]!.port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...cluster.env,
    DATABASE_URL: appUrl.toString(),
    TEMPORAL_ADDRESS: `${hostAddress}:${forwarders[0]!.port}`,
    OPSLEDGER_SECRET_KEY: read('secret-key'),
    OPSLEDGER_AGENT_ID: agentId,
    OPSLEDGER_DATA_DIR: dir,
  };
  const logFile = path.join(dir, 'logs', `${agentId}.log`);
  const host: AgentHost = {
    agentId,
    address,
    startWorker(extraEnv = {}) {
      const log = fs.openSync(logFile, 'a');
      host.worker = spawn('ip', ['netns', 'exec', netns, process.execPath, path.join(projectRoot, 'bin', 'opsledger.js'), 'worker'], {
        env: { ...env, ...extraEnv },
        stdio: ['ignore', log, log],
      });
      fs.closeSync(log);
    },
    completionOutcome: (taskId) => completionOutcomeIn(fs.readFileSync(logFile, 'utf8'), taskId),
    playbookRunning: () =>
      execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .some((pid) => commandLineOf(pid).includes('ansible-playbook')),
    logTail: (lines) => withoutColour(fs.readFileSync(logFile, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n'),
    cut: () => ip('link', 'set', hostEnd, 'down'),
    restore: () => ip('link', 'set', hostEnd, 'up'),
    async close() {
      const worker = host.worker;
      if (worker && worker.exitCode === null && worker.signalCode === null) {
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.kill('SIGKILL');
        await exited;
      }
      for (const forwarder of forwarders) forwarder.close();
      // Deleting the namespace deletes its end of the pair, and with it the host end.
      ip('netns', 'del', netns);
    },
  };
  return host;
}

/** A TCP forwarder on `listenHost`'s free port to `targetHost:targetPort`. */
function forward(listenHost: string, targetHost: string, targetPort: number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, targetHost);
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.once('close', () => outbound.destroy());
    outbound.once('close', () => inbound.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        close() {
          server.close();
          for (const socket of sockets) socket.destroy();
        },
      }),
    );
  });
}
