import { Client } from 'pg';
import { createDb, type Db } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';
import type { LedgerEntry } from '../../contracts';
import { testEnv } from '../support/testEnv';

const entry = (taskId: string, seq: number, over: Partial<LedgerEntry> = {}): LedgerEntry => ({
  taskId,
  runId: 'run-1',
  seq,
  status: 'queued',
  action: 'deploy',
  services: ['kuma'],
  actor: 'test',
  ...over,
});

describe('the ledger is append-only and tamper-evident', () => {
  let app: Db;
  let owner: Client;
  const ledger = () => createLedgerRepository(app);

  beforeAll(async () => {
    app = createDb({ connectionString: testEnv('databaseUrl'), role: 'opsledger_app' });
    owner = new Client({ connectionString: testEnv('databaseUrl') });
    await owner.connect();
  });
  afterAll(async () => {
    await app.close();
    await owner.end();
  });

  test('a retried append returns the row already recorded and adds nothing', async () => {
    const taskId = `retry-${Date.now()}`;
    const first = await ledger().append(entry(taskId, 1));
    const again = await ledger().append(entry(taskId, 1, { status: 'failed' }));
    expect(again).toEqual(first);
    expect(await ledger().trail(taskId)).toHaveLength(1);
  });

  test('the owner cannot UPDATE core columns, DELETE or TRUNCATE', async () => {
    const taskId = `owner-${Date.now()}`;
    await ledger().append(entry(taskId, 1));
    await expect(owner.query(`UPDATE tasks SET status = 'failed' WHERE task_id = $1`, [taskId])).rejects.toThrow(
      'tasks is an append-only ledger: UPDATE of core columns is not allowed',
    );
    await expect(owner.query('DELETE FROM tasks WHERE task_id = $1', [taskId])).rejects.toThrow(
      'tasks is an append-only ledger: DELETE is not allowed',
    );
    await expect(owner.query('TRUNCATE tasks')).rejects.toThrow('tasks is an append-only ledger: TRUNCATE is not allowed');
  });

  test('suggestions may be annotated, and updated_at moves with them', async () => {
    const taskId = `annotate-${Date.now()}`;
    const row = await ledger().append(entry(taskId, 1));
    const [updated] = await app.query<{ suggestions: unknown; updated_at: Date }>(
      `UPDATE tasks SET suggestions = '["retry later"]' WHERE task_id = $1 RETURNING suggestions, updated_at`,
      [taskId],
    );
    expect(updated?.suggestions).toEqual(['retry later']);
    expect(updated!.updated_at.getTime()).toBeGreaterThanOrEqual(new Date(row.createdAt).getTime());
  });

  test('the guards still fire under session_replication_role = replica', async () => {
    const taskId = `replica-${Date.now()}`;
    await ledger().append(entry(taskId, 1));
    await owner.query('BEGIN');
    try {
      await owner.query('SET LOCAL session_replication_role = replica');
      await expect(owner.query('DELETE FROM tasks WHERE task_id = $1', [taskId])).rejects.toThrow('append-only');
    } finally {
      await owner.query('ROLLBACK');
    }
  });

  test('the application role may only read, append and annotate', async () => {
    const taskId = `approle-${Date.now()}`;
    await ledger().append(entry(taskId, 1));
    await expect(app.query(`UPDATE tasks SET status = 'failed' WHERE task_id = $1`, [taskId])).rejects.toThrow(
      'permission denied',
    );
    await expect(app.query('DELETE FROM tasks WHERE task_id = $1', [taskId])).rejects.toThrow('permission denied');
    await expect(app.query('TRUNCATE tasks')).rejects.toThrow('permission denied');
    await expect(
      app.query(
        `INSERT INTO tasks (task_id, seq, status, action, services_touched, actor, created_at)
         VALUES ($1, 2, 'queued', 'deploy', '{kuma}', 'x', now() - interval '1 year')`,
        [taskId],
      ),
    ).rejects.toThrow('permission denied');
  });

  test('rows chain: each prev_hash is the previous row hash', async () => {
    const taskId = `chain-${Date.now()}`;
    const a = await ledger().append(entry(taskId, 1));
    const b = await ledger().append(entry(taskId, 2, { status: 'dispatched', agent: 'a1' }));
    expect(BigInt(b.chainSeq)).toBeGreaterThan(BigInt(a.chainSeq));
    const [previous] = await app.query<{ row_hash: string }>('SELECT row_hash FROM tasks WHERE chain_seq = $1', [
      String(BigInt(b.chainSeq) - 1n),
    ]);
    expect(b.prevHash).toBe(previous?.row_hash);
    expect(a.rowHash).toMatch(/^[0-9a-f]{64}$/);
  });
});
