import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { PlaybookRunner } from '../../activities/ansibleRunner';
import { createApp } from '../../src/api/app';
import { loadConfig, type Config } from '../../src/config';
import { createDb, type Db } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';
import { connectWorker, createOpsWorker } from '../../src/worker';
import { testEnv } from './testEnv';

export type TestStack = {
  config: Config;
  baseUrl: string;
  db: Db;
  temporal: Client;
  worker: Worker;
  close(): Promise<void>;
};

/** A worker on its own task queue and an API on a free port, against the shared test services. */
export async function startTestStack(opts: { runner?: PlaybookRunner; env?: NodeJS.ProcessEnv } = {}): Promise<TestStack> {
  const config = loadConfig({
    DATABASE_URL: testEnv('databaseUrl'),
    TEMPORAL_ADDRESS: testEnv('temporalAddress'),
    OPSLEDGER_TASK_QUEUE: `test-${crypto.randomUUID()}`,
    LOG_LEVEL: 'warn',
    ...opts.env,
  });
  const db = createDb({ connectionString: testEnv('databaseUrl'), role: config.OPSLEDGER_DB_ROLE });
  const workerConnection = await connectWorker(config.TEMPORAL_ADDRESS);
  const worker = await createOpsWorker({
    config,
    db,
    connection: workerConnection,
    runner: opts.runner,
    workflowBundle: testEnv('workflowBundle'),
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const temporal = new Client({ connection });
  const app = createApp({
    db,
    ledger: createLedgerRepository(db),
    temporal,
    taskQueue: config.OPSLEDGER_TASK_QUEUE,
    playbooksDir: config.OPSLEDGER_PLAYBOOKS_DIR,
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    config,
    baseUrl: `http://127.0.0.1:${port}`,
    db,
    temporal,
    worker,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      worker.shutdown();
      await running;
      await workerConnection.close();
      await connection.close();
      await db.close();
    },
  };
}

/** Polls until `check` returns a value, or fails with what it last saw. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function api(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; contentType: string; json: any }> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', json: text ? JSON.parse(text) : undefined };
}
