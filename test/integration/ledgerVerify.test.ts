import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Client } from 'pg';
import { buildOpenApiDocument, createOpenApiRegistry } from '../../src/api/openapi';
import { problemHandler } from '../../src/api/problem';
import { verifyRouter } from '../../src/api/routes/verify';
import { migrate } from '../../src/db/migrate';
import { databaseUrl, dropDatabase } from '../../src/db/databases';
import { createDb, type Db } from '../../src/db/pool';
import { MICROS_PER_HOUR, nowMicros } from '../../src/ledger/micros';
import { createAuditQueries } from '../../src/ledger/auditQueries';
import {
  createCheckpoint,
  generateCheckpointKeys,
  parseSignerKey,
  parseVerifierKey,
  readCheckpointFile,
  writeCheckpointFile,
} from '../../src/ledger/checkpoint';
import { createLedgerRepository, type LedgerRow } from '../../src/ledger/repository';
import { verifyAgainstCheckpoint, verifyChain } from '../../src/ledger/verify';
import type { LedgerEntry, TaskStatus } from '../../contracts';
import { testEnv } from '../support/testEnv';

const KEYS = generateCheckpointKeys('ledger-verify-test.example/ledger');
const SIGNER = parseSignerKey(KEYS.signerKey);
// What an auditor holds: the public half only.
const VERIFIER = parseVerifierKey(KEYS.verifierKey);
const STATUSES: TaskStatus[] = ['queued', 'dispatched', 'succeeded', 'failed'];

/** Rows shaped like the workflow's: plans, outcomes with quotes and non-ASCII text, failures. */
function entry(taskId: string, seq: number): LedgerEntry {
  const status = STATUSES[(seq - 1) % STATUSES.length]!;
  const final = status === 'succeeded' || status === 'failed';
  return {
    taskId,
    runId: `run-${taskId}`,
    seq,
    status,
    action: 'deploy',
    services: ['kuma', 'dns'],
    actor: 'orchestrator',
    ...(status === 'queued' ? { plan: { steps: ['render', 'restart'], complexity: 'low' } } : {}),
    ...(status !== 'queued' ? { agent: 'agent-1' } : {}),
    ...(final
      ? {
          outcome: { result: status, exitCode: status === 'failed' ? 2 : 0, outputTail: ['ok: [localhost] => "pong"', 'résumé ✓'] },
          resourcesUsed: { wallTimeMs: 1200 + seq, agentLoadPct: 12.5 },
        }
      : {}),
    ...(status === 'failed'
      ? { failure: { message: 'exit 2', context: { attempt: 1 } }, failureClass: 'application_error' as const }
      : {}),
  };
}

/** Appends `count` rows through the application role, as the worker does. */
async function appendRows(app: Db, count: number, prefix: string): Promise<LedgerRow[]> {
  const ledger = createLedgerRepository(app);
  const rows: LedgerRow[] = [];
  for (let i = 0; i < count; i++) {
    rows.push(await ledger.append(entry(`${prefix}-${Math.floor(i / 4)}`, (i % 4) + 1)));
  }
  return rows;
}

/**
 * What a superuser who switches everything off can do: inside a "migration" the DDL guard lets
 * the delete/update trigger be disabled, the statement runs, and the trigger is put back.
 */
async function tamper(owner: Client, sql: string): Promise<void> {
  await owner.query('BEGIN');
  try {
    await owner.query("SET LOCAL opsledger.migrating = 'on'");
    await owner.query('ALTER TABLE tasks DISABLE TRIGGER tasks_reject_update_delete');
    await owner.query(sql);
    await owner.query('ALTER TABLE tasks ENABLE ALWAYS TRIGGER tasks_reject_update_delete');
    await owner.query('COMMIT');
  } catch (err) {
    await owner.query('ROLLBACK');
    throw err;
  }
}

async function firstBrokenBySqlFunction(owner: Client) {
  const { rows } = await owner.query('SELECT chain_seq::text, task_id, seq, reason FROM ledger_first_broken_row()');
  return rows[0];
}

describe('ledger verification', () => {
  const prefix = `opsledger_verify_${Date.now()}_${process.pid}`;
  const template = `${prefix}_template`;
  const databases: string[] = [];
  const closers: (() => Promise<void>)[] = [];

  const urlOf = (database: string) => databaseUrl(testEnv('adminUrl'), database);
  const admin = async (sql: string) => {
    const client = new Client({ connectionString: testEnv('adminUrl') });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  /** A migrated ledger of its own for each scenario: tampering in one must not leak into another. */
  async function freshLedger(name: string): Promise<{ url: string; app: Db; owner: Client }> {
    const database = `${prefix}_${name}`;
    await admin(`CREATE DATABASE "${database}" TEMPLATE "${template}"`);
    databases.push(database);
    // The application's own login, as the worker and the API append; the tampering is the owner's.
    const app = createDb({ connectionString: databaseUrl(testEnv('databaseUrl'), database), role: 'opsledger_app', max: 2 });
    const owner = new Client({ connectionString: urlOf(database) });
    await owner.connect();
    closers.push(() => app.close(), () => owner.end());
    return { url: urlOf(database), app, owner };
  }

  beforeAll(async () => {
    await admin(`CREATE DATABASE "${template}"`);
    databases.push(template);
    await migrate(urlOf(template));
  });
  afterAll(async () => {
    for (const close of closers) await close();
    for (const database of databases.reverse()) await dropDatabase(testEnv('adminUrl'), database);
  });

  test('an intact chain verifies, naming its head', async () => {
    const { app, owner } = await freshLedger('intact');
    const rows = await appendRows(app, 12, 'intact');

    const result = await verifyChain(app);

    expect(result).toEqual({
      ok: true,
      rows: 12,
      head: { chainSeq: '12', rowHash: rows[11]!.rowHash },
      ms: expect.any(Number),
    });
    expect(await firstBrokenBySqlFunction(owner)).toBeUndefined();
  });

  test('the fast row hash renders the same bytes as ledger_row_hash, awkward values included', async () => {
    const { app, owner } = await freshLedger('awkward');
    await appendRows(app, 4, 'awkward');
    await owner.query(
      `INSERT INTO tasks (task_id, run_id, seq, status, action, services_touched, agent, actor, plan, outcome,
                          resources_used, failure, failure_class, created_at)
       VALUES ('nulls', NULL, 1, 'queued', 'deploy', '{kuma}', NULL, 'x', NULL, NULL, NULL, NULL, NULL,
               '1969-12-31 23:59:59.5+00'),
              ($1, 'run "1"', 2, 'timed_out', 'up\\date', ARRAY['kuma', 'dns ✓'], 'agent\ttab', $2,
               '{"n": 1.50, "e": 1e3, "z": -0, "empty": {}, "list": [], "deep": [[{"k": null}]]}', 'null',
               '"just a string"', '{"message": "line1\\nline2", "codes": [1, 2.0]}', 'timeout',
               '2024-02-29 23:59:59.999999+00')`,
      ['quote " and backslash \\ and emoji 🚀', 'control \u0001 char'],
    );

    const { rows } = await owner.query(
      'SELECT count(*)::int AS differing FROM tasks t WHERE ledger_row_hash_fast(t) IS DISTINCT FROM ledger_row_hash(t, t.prev_hash)',
    );
    expect(rows).toEqual([{ differing: 0 }]);
    expect(await verifyChain(app)).toMatchObject({ ok: true, rows: 6 });
  });

  test('a row edited behind the triggers is named with its task and the reason', async () => {
    const { app, owner } = await freshLedger('edited');
    const rows = await appendRows(app, 10, 'edited');
    await tamper(owner, `UPDATE tasks SET status = 'succeeded', outcome = '{"result":"succeeded"}' WHERE chain_seq = 4`);

    const result = await verifyChain(app);

    const edited = rows[3]!;
    const expected = { chainSeq: '4', taskId: edited.taskId, seq: edited.seq, reason: "row_hash does not match the row's content" };
    expect(result).toMatchObject({ ok: false, rows: 10, firstBroken: expected });
    expect(await firstBrokenBySqlFunction(owner)).toEqual({
      chain_seq: '4',
      task_id: edited.taskId,
      seq: edited.seq,
      reason: expected.reason,
    });
  });

  test('an edited row whose own hash was recomputed breaks the link of the next row', async () => {
    const { app, owner } = await freshLedger('rehashed');
    const rows = await appendRows(app, 10, 'rehashed');
    await tamper(
      owner,
      `UPDATE tasks SET status = 'cancelled' WHERE chain_seq = 4;
       UPDATE tasks t SET row_hash = ledger_row_hash(t, t.prev_hash) WHERE chain_seq = 4`,
    );

    const result = await verifyChain(app);

    expect(result.firstBroken).toEqual({
      chainSeq: '5',
      taskId: rows[4]!.taskId,
      seq: rows[4]!.seq,
      reason: "prev_hash does not match the previous row's hash",
    });
    expect((await firstBrokenBySqlFunction(owner))?.chain_seq).toBe('5');
  });

  test('a deleted middle row is named as a gap', async () => {
    const { app, owner } = await freshLedger('gap');
    const rows = await appendRows(app, 10, 'gap');
    await tamper(owner, 'DELETE FROM tasks WHERE chain_seq = 6');

    const result = await verifyChain(app);

    expect(result).toMatchObject({
      ok: false,
      rows: 9,
      firstBroken: { chainSeq: '7', taskId: rows[6]!.taskId, seq: rows[6]!.seq, reason: 'row(s) missing before chain_seq 7' },
    });
    expect((await firstBrokenBySqlFunction(owner))?.reason).toBe('row(s) missing before chain_seq 7');
  });

  test('a truncated tail keeps the chain intact but fails against an older checkpoint', async () => {
    const { app, owner } = await freshLedger('truncated');
    await appendRows(app, 6, 'truncated-a');
    const early = await createCheckpoint(app, SIGNER);
    await appendRows(app, 4, 'truncated-b');
    const late = await createCheckpoint(app, SIGNER);
    await appendRows(app, 3, 'truncated-c');
    expect([early.chainSeq, early.rows, late.chainSeq, late.rows]).toEqual(['6', 6, '10', 10]);

    // The operator keeps the checkpoint outside the database; it goes through its file.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-verify-'));
    const file = path.join(dir, 'checkpoint.json');
    await writeCheckpointFile(file, late);
    const kept = await readCheckpointFile(file, VERIFIER);
    fs.rmSync(dir, { recursive: true });

    await tamper(owner, 'DELETE FROM tasks WHERE chain_seq > 8');

    expect(await verifyChain(app)).toMatchObject({ ok: true, rows: 8, head: { chainSeq: '8' } });
    const result = await verifyAgainstCheckpoint(app, kept);
    expect(result.ok).toBe(false);
    expect(result.firstBroken).toBeUndefined();
    expect(result.checkpoint).toEqual({
      ok: false,
      reason:
        'row chain_seq 10 recorded by the checkpoint is missing: the ledger now ends at chain_seq 8 (rows were removed from the tail)',
    });
    expect(await verifyAgainstCheckpoint(app, early)).toMatchObject({ ok: true, checkpoint: { ok: true } });
  });

  test('a rewritten tail re-forms the chain but fails against the checkpoint', async () => {
    const { app, owner } = await freshLedger('rewritten');
    await appendRows(app, 10, 'rewritten-a');
    const checkpoint = await createCheckpoint(app, SIGNER);
    await tamper(owner, 'DELETE FROM tasks WHERE chain_seq > 7');
    await appendRows(app, 5, 'rewritten-b');

    expect(await verifyChain(app)).toMatchObject({ ok: true, rows: 12 });
    const result = await verifyAgainstCheckpoint(app, checkpoint);
    expect(result).toMatchObject({ ok: false, checkpoint: { ok: false } });
    expect(result.checkpoint.reason).toMatch(
      new RegExp(`^row chain_seq 10 has row_hash [0-9a-f]{64}, the checkpoint recorded ${checkpoint.rowHash} `),
    );
  });

  test('a checkpoint of a broken chain is refused', async () => {
    const { app, owner } = await freshLedger('broken-checkpoint');
    await appendRows(app, 5, 'broken-checkpoint');
    await tamper(owner, `UPDATE tasks SET actor = 'someone else' WHERE chain_seq = 2`);

    await expect(createCheckpoint(app, SIGNER)).rejects.toThrow(
      "refusing to checkpoint a broken chain: chain_seq 2 (task broken-checkpoint-0 seq 2): row_hash does not match the row's content",
    );
  });

  test('8 concurrent writers never fork the chain', async () => {
    const { url, app } = await freshLedger('concurrent');
    const writers = Array.from({ length: 8 }, () => createDb({ connectionString: url, role: 'opsledger_app', max: 1 }));
    try {
      await Promise.all(
        writers.map(async (writer, w) => {
          const ledger = createLedgerRepository(writer);
          for (let i = 0; i < 100; i++) await ledger.append(entry(`writer-${w}-task-${i}`, 1));
        }),
      );
    } finally {
      await Promise.all(writers.map((writer) => writer.close()));
    }

    const rows = await app.query<{ chain_seq: string; prev_hash: string; row_hash: string }>(
      'SELECT t.chain_seq::text, t.prev_hash, t.row_hash FROM tasks t ORDER BY t.chain_seq',
    );
    expect(rows.map((row) => Number(row.chain_seq))).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
    const links = rows.map((row, i) => row.prev_hash === (i === 0 ? '0'.repeat(64) : rows[i - 1]!.row_hash));
    expect(links.every(Boolean)).toBe(true);
    expect(await verifyChain(app)).toMatchObject({ ok: true, rows: 800 });

    // The appends of chain_seq 256, 512 and 768 brought the running totals up to the row before
    // them, whoever wrote it; the counts are exact, counted and uncounted rows together.
    const [progress] = await app.query<{ counted_through: string }>('SELECT counted_through::text FROM ledger_totals_progress');
    expect(progress?.counted_through).toBe('767');
    const now = nowMicros();
    const { services } = await createAuditQueries(app).byService({ from: now - MICROS_PER_HOUR, to: now + MICROS_PER_HOUR });
    expect(services.map((s) => [s.service, s.total, s.byStatus.queued])).toEqual([
      ['dns', 800, 800],
      ['kuma', 800, 800],
    ]);
  });

  test('a catch-up that fails holds up no append, and counts stay exact', async () => {
    const { app, owner } = await freshLedger('catch-up-fails');
    // Any failure inside the catch-up will do: this one refuses every new running total.
    await owner.query('ALTER TABLE ledger_running_totals ADD CONSTRAINT refuse_all CHECK (false) NOT VALID');
    await appendRows(app, 600, 'catch-up-fails');

    const counted = async () =>
      (await app.query<{ counted_through: string }>('SELECT counted_through::text FROM ledger_totals_progress'))[0]?.counted_through;
    expect(await counted()).toBe('0');
    const now = nowMicros();
    const range = { from: now - MICROS_PER_HOUR, to: now + MICROS_PER_HOUR };
    const expected = [{ service: 'dns', total: 600 }, { service: 'kuma', total: 600 }];
    const totals = async () => (await createAuditQueries(app).byService(range)).services.map(({ service, total }) => ({ service, total }));
    expect(await totals()).toEqual(expected);

    await owner.query('ALTER TABLE ledger_running_totals DROP CONSTRAINT refuse_all');
    await owner.query('SELECT ledger_totals_catch_up()');
    expect(await counted()).toBe('600');
    expect(await totals()).toEqual(expected);
  });

  test('a service is found while only rows the totals have not counted name it, and an unknown one is not', async () => {
    const { app, owner } = await freshLedger('first-seen');
    const ledger = createLedgerRepository(app);
    await ledger.append({ ...entry('first-seen-0', 1), services: ['first-seen'] });
    await ledger.append({ ...entry('first-seen-0', 2), services: ['first-seen', 'kuma'] });
    const series = await owner.query(`SELECT 1 FROM ledger_count_series WHERE dimension = 'service' AND name = 'first-seen'`);
    expect(series.rowCount).toBe(0);

    const audit = createAuditQueries(app);
    expect((await audit.list({ services: ['first-seen'] }, { limit: 10 })).rows).toHaveLength(2);
    expect((await audit.list({ services: ['first-seen', 'kuma'] }, { limit: 10 })).rows).toHaveLength(1);
    expect((await audit.list({ services: ['first-seen', 'never-seen'] }, { limit: 10 })).rows).toHaveLength(0);
    await owner.query('SELECT ledger_totals_catch_up()');
    expect((await audit.list({ services: ['first-seen'] }, { limit: 10 })).rows).toHaveLength(2);
  });

  test('a ledger row names each service it touches', async () => {
    const { owner } = await freshLedger('services-named');
    const insert = (services: string) =>
      owner.query(`INSERT INTO tasks (task_id, seq, status, action, services_touched, actor) VALUES ('t', 1, 'queued', 'deploy', $1, 'me')`, [
        services,
      ]);
    await expect(insert('{kuma,NULL}')).rejects.toThrow('tasks_services_named');
    await expect(insert('{""}')).rejects.toThrow('tasks_services_named');
    await expect(insert('{kuma}')).resolves.toMatchObject({ rowCount: 1 });
  });

  test('GET /api/v1/audit/verify answers 200 both ways, with firstBroken when broken', async () => {
    const { app, owner } = await freshLedger('rest');
    await appendRows(app, 5, 'rest');
    const openapi = createOpenApiRegistry();
    const server = express().use('/api/v1', verifyRouter({ db: app, openapi })).use(problemHandler).listen(0);
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/audit/verify`;
    try {
      const intact = await fetch(url);
      expect(intact.status).toBe(200);
      expect(await intact.json()).toMatchObject({ ok: true, rows: 5, head: { chainSeq: '5' } });

      await tamper(owner, 'DELETE FROM tasks WHERE chain_seq = 3');
      const broken = await fetch(url);
      expect(broken.status).toBe(200);
      expect(await broken.json()).toMatchObject({
        ok: false,
        rows: 4,
        firstBroken: { chainSeq: '4', reason: 'row(s) missing before chain_seq 4' },
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(Object.keys(buildOpenApiDocument(openapi).paths ?? {})).toContain('/api/v1/audit/verify');
  });
});
