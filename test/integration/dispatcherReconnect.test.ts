import { Client as PgClient } from 'pg';
import { startDispatcher, type Dispatcher } from '../../src/admission/dispatcher';
import { createAdmissionRepository } from '../../src/admission/repository';
import { createDb, type Db } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';
import { eventually, IDLE_HOST, startTestStack, type TestStack } from '../support/stack';
import { testEnv } from '../support/testEnv';

// The dispatcher's own pool is this small so that leaking one connection per drop exhausts it quickly.
const POOL_MAX = 3;
const DROPS = POOL_MAX + 2;

/**
 * PostgreSQL drops the dispatcher's LISTEN connection (a failover, an idle-session killer, an
 * operator's pg_terminate_backend): the dispatcher must give that connection back, take the
 * lead again, and leave the pool able to serve everyone else.
 */
describe('the dispatcher when PostgreSQL drops its connection', () => {
  let stack: TestStack;
  let db: Db;
  let superuser: PgClient;
  let dispatcher: Dispatcher;
  const pool = `reconnect-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;

  /** The backend holding this pool's leader lock: the dispatcher's LISTEN connection. */
  const leaderPid = async (): Promise<number | undefined> => {
    const { rows } = await superuser.query<{ pid: number }>(
      `SELECT pid FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 1
          AND objid::bigint = (hashtext('opsledger.dispatcher.' || $1)::bigint & 4294967295)`,
      [pool],
    );
    return rows[0]?.pid;
  };

  beforeAll(async () => {
    stack = await startTestStack({ worker: false });
    db = createDb({ connectionString: testEnv('databaseUrl'), role: stack.config.OPSLEDGER_DB_ROLE, max: POOL_MAX });
    superuser = new PgClient({ connectionString: testEnv('adminUrl') });
    await superuser.connect();
    const admission = createAdmissionRepository(db, { agentMaxAgeS: 600, loadThresholdPct: 80 });
    dispatcher = startDispatcher({ db, admission, temporal: stack.temporal, pool, intervalMs: 100 });
  });
  afterAll(async () => {
    await dispatcher?.stop();
    await db?.close();
    await superuser?.end();
    await stack?.close();
  });

  test(`terminated ${DROPS} times, more than its pool has connections, it leads again each time and appends and dispatch still work`, async () => {
    let previous: number | undefined;
    for (let drop = 0; drop < DROPS; drop++) {
      const pid = await eventually(async () => {
        const current = await leaderPid();
        return current !== undefined && current !== previous ? current : undefined;
      }, 30_000);
      const { rows } = await superuser.query<{ terminated: boolean }>('SELECT pg_terminate_backend($1) AS terminated', [pid]);
      expect(rows[0]?.terminated).toBe(true);
      previous = pid;
    }
    await eventually(async () => {
      const current = await leaderPid();
      return current !== undefined && current !== previous && dispatcher.isLeader() ? true : undefined;
    }, 30_000);
    expect(db.pool.totalCount).toBeLessThanOrEqual(POOL_MAX);

    const ledger = createLedgerRepository(db);
    const taskId = `reconnect-append-${pool}`;
    await expect(
      ledger.append({ taskId, runId: 'run-reconnect', seq: 1, status: 'queued', action: 'check', services: ['dns'], actor: 'test' }),
    ).resolves.toMatchObject({ taskId, seq: 1 });

    // A grant for a task with no workflow is freed by the dispatcher: proof that it still walks this pool's queue.
    const admission = createAdmissionRepository(db, { agentMaxAgeS: 600, loadThresholdPct: 80 });
    await admission.heartbeat({ agentId: `agent-${pool}`, pool, taskQueue: `${pool}-agent`, labels: {}, ...IDLE_HOST });
    const ghost = `reconnect-ghost-${pool}`;
    await db.query(
      `INSERT INTO pause_queue (task_id, pool, priority, reason, requirements)
       VALUES ($1, $2, 50, 'capacity', '{"cpu":0.1,"memoryMb":1,"gpuVramMb":0}')`,
      [ghost, pool],
    );
    await eventually(async () => ((await admission.queue(pool)).some((q) => q.taskId === ghost) ? undefined : true), 30_000);
    expect(db.pool.totalCount).toBeLessThanOrEqual(POOL_MAX);
  }, 180_000);
});
