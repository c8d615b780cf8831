import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { hashToken } from '../../src/api/auth';
import { ensureAppLogin, loginUrl } from '../../src/db/appLogin';
import { databaseUrl, ensureDatabase } from '../../src/db/databases';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/db/embeddedPostgres';
import { migrate } from '../../src/db/migrate';
import { projectRoot } from '../../src/paths';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { startTemporalDevServer, type DevServer, type DevServerOptions } from '../../src/temporal/devServer';
import { pidsRunning } from '../../test/support/processes';
import { freeServerPort } from '../../test/support/ports';

/**
 * The stack the soak breaks, every part its own process: a PostgreSQL cluster of its own (never
 * the machine's shared one), the Temporal dev server on a SQLite file that outlives its restarts,
 * an API and a worker as `opsledger api` and `opsledger worker`. Each part can be SIGKILLed and
 * started again on the same data; the worker can also be frozen (SIGSTOP) and thawed, which cuts
 * it off from Temporal and PostgreSQL as a network partition would.
 */

export const FAULT_KINDS = ['worker', 'api', 'temporal', 'postgres', 'partition'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type SoakCluster = {
  baseUrl: string;
  ownerUrl: string;
  temporalAddress: string;
  token: string;
  agentId: string;
  /** Every log the stack's processes write: the API's, the worker's, the dev server's and PostgreSQL's. */
  logFiles: string[];
  /** The API's and the worker's processes now, for their memory. */
  pids(): { api?: number; worker?: number };
  /** SIGKILL one part and start it again; resolves once it was started (not once it is ready). */
  kill(kind: Exclude<FaultKind, 'partition'>): Promise<void>;
  /** Freezes the worker for `ms`, then lets it go on. */
  partition(ms: number): Promise<void>;
  /** How often the API and the worker exited on their own (each was started again). */
  crashes(): { api: number; worker: number };
  close(): Promise<void>;
};

type Part = { child?: ChildProcess; crashes?: number; stopping?: boolean; start(): Promise<void>; stop(): Promise<void> };
type ProcessPart = Part & { logFile: string };

export async function startSoakCluster(scratch: string): Promise<SoakCluster> {
  const secret = crypto.randomBytes(18).toString('base64url');
  const token = `soak-${secret}`;
  const agentId = 'soak-agent';

  // PostgreSQL: one cluster on a fixed port, kept across its restarts. Every server port is one
  // no client connection can hold while its server is down (freeServerPort).
  const pgDir = path.join(scratch, 'pg');
  const pgPort = await freeServerPort();
  const startPostgres = () => startEmbeddedPostgres({ dataDir: pgDir, port: pgPort, database: 'postgres', stopsWithCaller: true });
  let postgres: EmbeddedPostgresHandle = await startPostgres();
  const ownerUrl = databaseUrl(postgres.url, 'opsledger_soak');
  await ensureDatabase(databaseUrl(postgres.url, 'postgres'), 'opsledger_soak');
  await migrate(ownerUrl);
  const login = { user: 'opsledger_soak_app', password: crypto.randomBytes(18).toString('base64url'), role: 'opsledger_app' };
  await ensureAppLogin(ownerUrl, login);

  // Temporal: the same SQLite file, port and namespace across restarts.
  const cli = await ensureTemporalCli(process.env.TEMPORAL_CLI);
  const devServerOptions = {
    cli,
    dbFile: path.join(scratch, 'temporal.sqlite'),
    logFile: path.join(scratch, 'temporal.log'),
    port: await freeServerPort(),
    httpPort: await freeServerPort(),
    metricsPort: await freeServerPort(),
    namespace: 'default',
    stopsWithCaller: true,
  };
  let temporal: DevServer = await startTemporalDevServer(devServerOptions);

  const apiPort = await freeServerPort();
  const common: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: loginUrl(ownerUrl, login),
    TEMPORAL_ADDRESS: temporal.address,
    OPSLEDGER_SECRET_KEY: `soak-key-${secret}`,
    OPSLEDGER_CURSOR_SECRET: `soak-cursor-${secret}`,
    OPSLEDGER_DATA_DIR: path.join(scratch, 'data'),
    OPSLEDGER_TASK_QUEUE: 'soak',
    OPSLEDGER_AGENT_ID: agentId,
    // What they log at info is what the secret scan reads: it should be all an operator would keep.
    LOG_LEVEL: 'info',
  };
  const api = processPart(['api'], { ...common, PORT: String(apiPort), OPSLEDGER_TOKENS: `soak:admin:${hashToken(token)}` }, path.join(scratch, 'api.log'));
  const worker = processPart(
    ['worker'],
    // Reports every second. The soak proves recovery, not admission by load: whatever else this
    // machine runs (at a load average of 19 a 1,000% limit let four tasks run at a time), only
    // memory, which the soak's tasks are sized by, holds tasks back.
    { ...common, OPSLEDGER_AGENT_REPORT_S: '1', OPSLEDGER_LOAD_THRESHOLD_PCT: '100000' },
    path.join(scratch, 'worker.log'),
  );
  await api.start();
  await worker.start();

  const parts: Record<Exclude<FaultKind, 'partition'>, Part> = {
    api,
    worker,
    temporal: {
      async start() {
        temporal = await startDevServerAgain(devServerOptions);
      },
      stop: () => temporal.stop(),
    },
    postgres: {
      async start() {
        postgres = await untilStarted(startPostgres);
      },
      stop: () => postgres.stop(),
    },
  };

  return {
    baseUrl: `http://127.0.0.1:${apiPort}`,
    ownerUrl,
    temporalAddress: temporal.address,
    token,
    agentId,
    logFiles: [api.logFile, worker.logFile, devServerOptions.logFile, postgres.logFile],
    pids: () => ({ api: api.child?.pid, worker: worker.child?.pid }),
    async kill(kind) {
      if (kind === 'temporal') await killDevServer(devServerOptions);
      else if (kind === 'postgres') {
        killAll(postmasterPid(pgDir));
        await waitForExit('the postmaster', () => postmasterPid(pgDir));
      } else {
        const child = parts[kind].child;
        // Its exit is ours, not a crash: the part no longer holds it.
        parts[kind].child = undefined;
        child?.kill('SIGKILL');
        await waitForExit(`the ${kind}`, () => alive(child));
      }
      await parts[kind].start();
    },
    async partition(ms) {
      const child = worker.child;
      child?.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, ms));
      child?.kill('SIGCONT');
    },
    crashes: () => ({ api: api.crashes ?? 0, worker: worker.crashes ?? 0 }),
    async close() {
      for (const part of [api, worker, parts.temporal, parts.postgres]) await part.stop().catch(() => undefined);
      fs.rmSync(fs.realpathSync(path.join(pgDir, 'postgres')), { recursive: true, force: true });
    },
  };
}

/**
 * An `opsledger` process. One that exits on its own (not killed or stopped by the soak) is counted
 * as a crash and started again, as a supervisor would.
 */
function processPart(args: string[], env: NodeJS.ProcessEnv, logFile: string): ProcessPart {
  const part: ProcessPart = {
    logFile,
    crashes: 0,
    async start() {
      const log = fs.openSync(logFile, 'a');
      const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'opsledger.js'), ...args], { env, stdio: ['ignore', log, log] });
      fs.closeSync(log);
      part.child = child;
      child.once('exit', (code, signal) => {
        if (part.child !== child || part.stopping) return;
        part.crashes! += 1;
        // Said at once: a part that keeps exiting would otherwise show only as tasks that never end.
        console.log(`\n  opsledger ${args.join(' ')} exited on its own (${signal ?? code}), started again; see ${logFile}`);
        void part.start();
      });
    },
    async stop() {
      part.stopping = true;
      const child = part.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await exited;
    },
  };
  return part;
}

/** The postmaster of the cluster, from its postmaster.pid; none when it is not running. */
function postmasterPid(dataDir: string): number[] {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 0);
    return [pid];
  } catch {
    return [];
  }
}

function alive(child: ChildProcess | undefined): number[] {
  return child && child.exitCode === null && child.signalCode === null && child.pid ? [child.pid] : [];
}

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/** A SIGKILLed process is gone within moments; one that is not (stuck in the kernel) stops the soak. */
async function waitForExit(what: string, running: () => number[]): Promise<void> {
  for (const giveUp = Date.now() + EXIT_TIMEOUT_MS; running().length > 0; ) {
    if (Date.now() > giveUp) throw new Error(`${what} (pid ${running().join(', ')}) did not exit within ${EXIT_TIMEOUT_MS / 1000} s of SIGKILL`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const EXIT_TIMEOUT_MS = 30_000;
const DEV_SERVER_RESTART_BUDGET_MS = 180_000;
// Above the dev server's own 60 s wait to answer: past it, one of its calls got no answer at all.
const DEV_SERVER_ATTEMPT_MS = 90_000;

/**
 * Starts the dev server again on its SQLite file and ports, trying again for up to 3 minutes. Each
 * attempt that fails is told with why and what the server printed meanwhile: at the end of a restart
 * that came back after all, and in the error that stops the soak when none did.
 */
async function startDevServerAgain(options: DevServerOptions): Promise<DevServer> {
  const failures: string[] = [];
  for (let attempt = 1, giveUp = Date.now() + DEV_SERVER_RESTART_BUDGET_MS; ; attempt++) {
    const logStart = fs.statSync(options.logFile).size;
    try {
      const server = await withinDeadline(startTemporalDevServer(options), DEV_SERVER_ATTEMPT_MS, () => killDevServer(options));
      if (failures.length > 0) console.log(`\n  the dev server started again at attempt ${attempt}; before:\n${failures.join('\n')}`);
      return server;
    } catch (err) {
      failures.push(`    attempt ${attempt}: ${(err as Error).message.split('\n')[0]}\n${printedSince(options.logFile, logStart)}`);
      if (Date.now() > giveUp) {
        throw new Error(`the dev server did not start again in ${DEV_SERVER_RESTART_BUDGET_MS / 1000} s (${options.logFile}):\n${failures.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/**
 * SIGKILLs the dev server and waits until the soak, its parent, has reaped it. Its command line
 * going is no sign, nor its main thread a zombie: the kernel drops both before the last of its
 * threads has ended and closed its sockets, and a restart meanwhile finds the port still held
 * ("bind: address already in use").
 */
async function killDevServer(options: DevServerOptions): Promise<void> {
  const pids = pidsRunning(options.dbFile);
  killAll(pids);
  await waitForExit('the dev server', () => pids.filter((pid) => fs.existsSync(`/proc/${pid}`)));
}

/** The promise's outcome; or once `ms` have passed, `abandon` is run and the attempt fails. */
async function withinDeadline<T>(work: Promise<T>, ms: number, abandon: () => Promise<void>): Promise<T> {
  const timedOut = Symbol('timed out');
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof timedOut>((resolve) => {
    timer = setTimeout(() => resolve(timedOut), ms);
  });
  const outcome = await Promise.race([work, deadline]).finally(() => clearTimeout(timer));
  if (outcome !== timedOut) return outcome as T;
  // What the abandoned attempt does later must not end the soak as an unhandled rejection.
  work.catch(() => undefined);
  await abandon();
  throw new Error(`no answer within ${ms / 1000} s`);
}

/** The last lines a log got since it was `from` bytes long, indented, each cut at 300 characters. */
function printedSince(logFile: string, from: number): string {
  const lines = fs.readFileSync(logFile).subarray(from).toString('utf8').split('\n').filter(Boolean);
  if (lines.length === 0) return '      (it printed nothing)';
  return lines.slice(-8).map((line) => `      ${line.slice(0, 300)}`).join('\n');
}

/**
 * A restart that may be refused for a moment: backends of a SIGKILLed postmaster keep its shared
 * memory until they notice it is gone ("pre-existing shared memory block is still in use"). Tried
 * again until it starts, 50 times at most.
 */
async function untilStarted<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 50) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
