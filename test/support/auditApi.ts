import http from 'node:http';
import type net from 'node:net';
import express from 'express';
import { createOpenApiRegistry } from '../../src/api/openapi';
import { problemHandler } from '../../src/api/problem';
import { auditRouter } from '../../src/api/routes/audit';
import type { Db } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';

export type AuditApi = { baseUrl: string; close: () => Promise<void> };

/**
 * The audit router alone on a free port, over a scratch ledger the test seeds itself, with a fixed
 * clock so that relative times and default ranges are the test's. No authentication: the tests of
 * the tokens and roles run against the whole app.
 */
export async function startAuditApi(db: Db, { nowMs, cursorSecret }: { nowMs: number; cursorSecret: string }): Promise<AuditApi> {
  const api = express();
  api.use(express.json());
  api.use(
    '/api/v1',
    auditRouter({ db, ledger: createLedgerRepository(db), openapi: createOpenApiRegistry(), cursorSecret, clock: () => nowMs }),
  );
  api.use(problemHandler);
  const server = http.createServer(api);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
