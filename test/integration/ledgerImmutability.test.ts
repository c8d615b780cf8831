import { ApplicationFailure } from '@temporalio/activity';
import { Client } from 'pg';
import { createActivities } from '../../activities';
import { createDb, type Db } from '../../src/db/pool';
import { LedgerConflictError } from '../../src/errors';
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
    owner = new Client({ connectionString: testEnv('ownerUrl') });
    await owner.connect();
  });
  afterAll(async () => {
    await app.close();
    await owner.end();
  });

  test('a retried append returns the row already recorded and adds nothing', async () => {
    const taskId = `retry-${Date.now()}`;
    const first = await ledger().append(entry(taskId, 1, { plan: { steps: ['a', 'b'] } }));
    const again = await ledger().append(entry(taskId, 1, { plan: { steps: ['a', 'b'] } }));
    expect(again).toEqual(first);
    expect(await ledger().trail(taskId)).toHaveLength(1);
  });

  test('another row under a recorded (task, run, seq) is refused, not answered with the old row', async () => {
    const taskId = `conflict-${Date.now()}`;
    const first = await ledger().append(entry(taskId, 1));
    const conflicting = ledger().append(entry(taskId, 1, { status: 'failed', failureClass: 'application_error' }));
    await expect(conflicting).rejects.toBeInstanceOf(LedgerConflictError);
    await expect(conflicting).rejects.toThrow(`task ${taskId}, run run-1, seq 1 is already recorded (chain_seq ${first.chainSeq}, status queued)`);
    expect(await ledger().trail(taskId)).toEqual([first]);
  });

  test('the activity that records decisions fails for good on such a row: retrying cannot fix it', async () => {
    const taskId = `conflict-activity-${Date.now()}`;
    const activities = createActivities({ ledger: ledger(), admission: undefined as never, runner: undefined as never, playbookTimeoutS: 1 });
    await activities.recordDecision(entry(taskId, 1));
    await activities.recordDecision(entry(taskId, 1));
    const refused = activities.recordDecision(entry(taskId, 1, { status: 'succeeded' }));
    await expect(refused).rejects.toBeInstanceOf(ApplicationFailure);
    await expect(refused).rejects.toMatchObject({ type: 'LedgerConflictError', nonRetryable: true });
  });

  test('a second run of a task (resubmitted once Temporal forgot the first) is recorded beside the first', async () => {
    const taskId = `second-run-${Date.now()}`;
    const runA = [
      await ledger().append(entry(taskId, 1, { runId: 'run-a' })),
      await ledger().append(entry(taskId, 2, { runId: 'run-a', status: 'failed', failureClass: 'application_error' })),
    ];
    const runB = [
      await ledger().append(entry(taskId, 1, { runId: 'run-b' })),
      await ledger().append(entry(taskId, 2, { runId: 'run-b', status: 'succeeded' })),
    ];
    expect(runB.map((r) => [r.runId, r.status])).toEqual([['run-b', 'queued'], ['run-b', 'succeeded']]);
    expect(await ledger().trail(taskId)).toEqual([...runA, ...runB]);
  });

  test('a run reset to a step records its steps from there on, after the whole first run', async () => {
    const taskId = `reset-${Date.now()}`;
    const runA = [
      await ledger().append(entry(taskId, 1, { runId: 'run-a' })),
      await ledger().append(entry(taskId, 2, { runId: 'run-a', status: 'dispatched', agent: 'a1' })),
      await ledger().append(entry(taskId, 3, { runId: 'run-a', status: 'failed', failureClass: 'infrastructure' })),
    ];
    // `temporal workflow reset` to after the dispatch: the new run replays steps 1-2 from history.
    const runB = [await ledger().append(entry(taskId, 3, { runId: 'run-b', status: 'succeeded', agent: 'a1' }))];
    expect(await ledger().trail(taskId)).toEqual([...runA, ...runB]);
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
