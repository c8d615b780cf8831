import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { logger } from '../logger';
import { tailOf } from '../logTail';
import { ensureSearchAttributes } from './searchAttributes';

export type DevServerOptions = {
  cli: string;
  dbFile: string;
  port: number;
  uiPort?: number;
  namespace: string;
  logFile: string;
  /** Extra ports the dev server would otherwise pick itself; tests pass free ones. */
  httpPort?: number;
  metricsPort?: number;
  startTimeoutMs?: number;
  /** In the caller's process group: see EmbeddedPostgresOptions.stopsWithCaller. */
  stopsWithCaller?: boolean;
};

export type DevServer = { address: string; uiUrl?: string; stop(): Promise<void> };

/**
 * Starts `temporal server start-dev` persisted in a SQLite file (WAL, so the one connection the
 * dev server has does not block readers), waits until it answers, and registers our search
 * attributes, also on a database file that already exists.
 */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<DevServer> {
  fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  const args = [
    'server', 'start-dev',
    '--db-filename', opts.dbFile,
    '--ip', '127.0.0.1',
    '--port', String(opts.port),
    '--namespace', opts.namespace,
    '--sqlite-pragma', 'journal_mode=wal',
    '--sqlite-pragma', 'synchronous=normal',
    '--log-level', 'warn',
  ];
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.httpPort) args.push('--http-port', String(opts.httpPort));
  if (opts.metricsPort) args.push('--metrics-port', String(opts.metricsPort));

  const log = fs.openSync(opts.logFile, 'a');
  // A process group of its own: a Ctrl-C in the terminal reaches only us, and we stop the server
  // after the worker and the API that use it.
  const child = spawn(opts.cli, args, { stdio: ['ignore', log, log], detached: !opts.stopsWithCaller });
  fs.closeSync(log);
  const address = `127.0.0.1:${opts.port}`;
  const stop = () => stopChild(child);
  try {
    await waitUntilServing(child, address, opts);
    const connection = await Connection.connect({ address });
    try {
      await ensureSearchAttributes(connection, opts.namespace);
    } finally {
      await connection.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, uiUrl: opts.uiPort ? `http://127.0.0.1:${opts.uiPort}` : undefined, stop };
}

async function waitUntilServing(child: ChildProcess, address: string, opts: DevServerOptions): Promise<void> {
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`temporal server start-dev exited with ${exited}; see ${opts.logFile}:\n${tailOf(opts.logFile)}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: opts.namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`Temporal dev server at ${address} did not come up: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => {
      logger.warn({ pid: child.pid }, 'child did not stop on SIGTERM; killing');
      child.kill('SIGKILL');
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
