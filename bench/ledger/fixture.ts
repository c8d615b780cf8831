import type { Client } from 'pg';

/**
 * The ledger fixture: 1,000,000 rows over the 90 days ending now, as the workflow would have
 * written them. Rows come in blocks of 32 = 10 tasks: each task a `queued` row, a `dispatched` row
 * and a final row, and one task in ten also `paused` and `resumed` before dispatch (seq 1..5).
 * Within a block the tasks' rows interleave (all queued, then the waits, the dispatches, the
 * ends), so a task's trail spans minutes, as it does in production.
 *
 * Every attribute of a task is a hash of its number, so the fixture is the same on every run and
 * all rows of one task agree (action, services, agent) wherever the batch boundaries fall.
 * Inserted as the owner with explicit created_at in chronological order, through the chain trigger
 * (which also brings the running totals up to date every 256 rows), exactly as appends fill the table.
 */

export const FIXTURE_ROWS = 1_000_000;
export const FIXTURE_DAYS = 90;
const ROWS_PER_BLOCK = 32;
const TASKS_PER_BLOCK = 10;
// 1,250 blocks = 40,000 rows a statement; 25 statements, each task's rows in one of them.
const BLOCKS_PER_STATEMENT = 1250;

export const SERVICES = [
  'kuma', 'portals', 'grafana', 'prometheus', 'loki', 'vault', 'postgres', 'redis', 'nginx', 'keycloak',
] as const;
export const AGENTS = Array.from({ length: 8 }, (_, i) => `agent-${String(i + 1).padStart(2, '0')}`);
// The action vocabulary (src/tasks/schema.ts ACTIONS), repeated by how often each is used.
const ACTION_MIX = [
  ...Array(4).fill('deploy'), ...Array(4).fill('restart'), ...Array(3).fill('update'), ...Array(3).fill('check'),
  ...Array(2).fill('configure'), ...Array(2).fill('backup'), 'add', 'remove', 'restore', 'rollback',
] as string[];
const REQUESTERS = ['orchestrator', 'orchestrator', 'orchestrator', 'alice', 'bob', 'carol'];

export type Fixture = {
  rows: number;
  tasks: number;
  loadSeconds: number;
  vacuumAnalyzeSeconds: number;
  /** Epoch microseconds of the newest row (the fixture ends at the load's now()). */
  newestMicros: bigint;
  oldestMicros: bigint;
};

/** Loads the fixture in batches, reporting progress, then VACUUM (ANALYZE). */
export async function loadFixture(owner: Client, progress: (line: string) => void): Promise<Fixture> {
  const [anchor] = (
    await owner.query<{ start_iso: string; step_micros: string }>(
      `SELECT to_char((now() - make_interval(days => $1::int)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS start_iso,
              (extract(epoch FROM make_interval(days => $1::int)) * 1000000 / $2::bigint)::bigint::text AS step_micros`,
      [FIXTURE_DAYS, FIXTURE_ROWS],
    )
  ).rows;
  if (!anchor) throw new Error('no anchor time');
  const blocks = FIXTURE_ROWS / ROWS_PER_BLOCK;
  const started = performance.now();
  for (let first = 0; first < blocks; first += BLOCKS_PER_STATEMENT) {
    const last = Math.min(blocks, first + BLOCKS_PER_STATEMENT) - 1;
    await owner.query(INSERT_BLOCKS_SQL, [first, last, anchor.start_iso, anchor.step_micros]);
    const done = (last + 1) * ROWS_PER_BLOCK;
    if (done % 200_000 === 0) {
      const s = (performance.now() - started) / 1000;
      progress(`${done.toLocaleString('en-US')} rows, ${s.toFixed(0)} s (${Math.round(done / s).toLocaleString('en-US')} rows/s)`);
    }
  }
  const loadSeconds = (performance.now() - started) / 1000;
  const vacuumStarted = performance.now();
  // VACUUM as well as ANALYZE: autovacuum would do it to an insert-only table soon after (or, where
  // it is off, never), and without it the first reads of each page set hint bits and every timing
  // below would include that one-off write.
  await owner.query('VACUUM (ANALYZE) tasks');
  await owner.query('VACUUM (ANALYZE) ledger_running_totals');
  const vacuumAnalyzeSeconds = (performance.now() - vacuumStarted) / 1000;
  const [span] = (
    await owner.query<{ rows: string; tasks: string; newest: string; oldest: string }>(
      `SELECT count(*)::text AS rows, count(*) FILTER (WHERE seq = 1)::text AS tasks,
              (extract(epoch FROM max(created_at)) * 1000000)::bigint::text AS newest,
              (extract(epoch FROM min(created_at)) * 1000000)::bigint::text AS oldest
         FROM tasks`,
    )
  ).rows;
  if (!span) throw new Error('no fixture rows');
  return {
    rows: Number(span.rows),
    tasks: Number(span.tasks),
    loadSeconds,
    vacuumAnalyzeSeconds,
    newestMicros: BigInt(span.newest),
    oldestMicros: BigInt(span.oldest),
  };
}

// Per-task choices: hashint8extended(k, seed) mod n, non-negative.
const pickSql = (seed: number, n: number) => `(((hashint8extended(task.k, ${seed}) % ${n}) + ${n}) % ${n})::int`;
const sqlTextArray = (values: readonly string[]) => `(ARRAY[${values.map((v) => `'${v}'`).join(', ')}])`;

/** Row positions within a block: [position, task slot, stage]. Slot 9 is the task that waits. */
const LAYOUT = [
  ...Array.from({ length: TASKS_PER_BLOCK }, (_, slot) => [slot, 'queued'] as const),
  [9, 'paused'] as const,
  [9, 'resumed'] as const,
  ...Array.from({ length: TASKS_PER_BLOCK }, (_, slot) => [slot, 'dispatched'] as const),
  ...Array.from({ length: TASKS_PER_BLOCK }, (_, slot) => [slot, 'final'] as const),
].map(([slot, stage], pos) => `(${pos}, ${slot}, '${stage}')`);

/**
 * $1, $2 the first and last block; $3 the fixture's start (ISO, UTC); $4 microseconds between
 * rows. created_at = start + (row number + jitter below one step) * step: strictly increasing.
 */
const INSERT_BLOCKS_SQL = `
  INSERT INTO tasks (task_id, run_id, seq, status, action, services_touched, agent, actor,
                     plan, outcome, resources_used, failure, failure_class, created_at)
  SELECT a.action || '-' || a.services[1] || '-' || task.k,
         md5(task.k::text)::uuid::text,
         CASE l.stage WHEN 'queued' THEN 1 WHEN 'paused' THEN 2 WHEN 'resumed' THEN 3
                      WHEN 'dispatched' THEN CASE WHEN a.waited THEN 4 ELSE 2 END
                      ELSE CASE WHEN a.waited THEN 5 ELSE 3 END END,
         CASE WHEN l.stage = 'final' THEN a.final ELSE l.stage END,
         a.action,
         a.services,
         CASE WHEN l.stage IN ('queued', 'paused') THEN NULL ELSE a.agent END,
         CASE l.stage WHEN 'queued' THEN a.requester WHEN 'paused' THEN 'opsledger'
                      WHEN 'resumed' THEN 'dispatcher' WHEN 'dispatched' THEN 'dispatcher'
                      ELSE CASE WHEN a.final = 'cancelled' THEN a.requester ELSE 'opsledger' END END,
         CASE WHEN l.stage = 'queued' THEN jsonb_build_object(
           'steps', jsonb_build_array('gather facts', a.action || ' ' || a.services[1], 'verify ' || a.services[1]),
           'estimatedDurationS', a.wall_s, 'complexity', a.complexity, 'playbook', a.action || '.yml',
           'checkMode', false, 'priority', a.priority) END,
         CASE l.stage
           WHEN 'paused' THEN jsonb_build_object('reason', 'capacity',
             'shortfall', 'memory: needs ' || a.memory_mb || ' MB, 512 MB free', 'position', 1 + task.k % 7)
           WHEN 'resumed' THEN jsonb_build_object('grantedAgent', a.agent)
           WHEN 'dispatched' THEN jsonb_build_object('attempt', 1, 'loadPctAtDispatch', a.load_pct, 'overridden', false)
           WHEN 'final' THEN CASE WHEN a.final <> 'cancelled' THEN jsonb_build_object(
             'result', a.final,
             'exitCode', CASE a.final WHEN 'succeeded' THEN 0 WHEN 'failed' THEN 2 END,
             'counts', jsonb_build_object('ok', 3 + a.changed, 'changed', a.changed,
               'failed', CASE WHEN a.final = 'failed' AND a.failure_class <> 'infrastructure' THEN 1 ELSE 0 END,
               'unreachable', CASE WHEN a.failure_class = 'infrastructure' THEN 1 ELSE 0 END,
               'skipped', task.k % 3, 'rescued', 0, 'ignored', 0),
             'keyMessages', CASE WHEN a.final = 'succeeded' THEN '[]'::jsonb
                                 ELSE jsonb_build_array(a.services[1] || ': ' || a.final || ' on ' || a.agent) END,
             'steps', jsonb_build_array(
               jsonb_build_object('play', a.services[1], 'task', 'Gathering Facts', 'status', 'ok', 'host', a.agent),
               jsonb_build_object('play', a.services[1], 'task', a.action || ' ' || a.services[1],
                                  'status', CASE WHEN a.changed > 0 THEN 'changed' ELSE 'ok' END, 'host', a.agent),
               jsonb_build_object('play', a.services[1], 'task', 'verify ' || a.services[1],
                                  'status', CASE WHEN a.final = 'succeeded' THEN 'ok' ELSE 'failed' END, 'host', a.agent)),
             'outputTail', jsonb_build_array('PLAY RECAP *********',
               a.agent || ' : ok=' || (3 + a.changed) || ' changed=' || a.changed)) END
         END,
         CASE WHEN l.stage = 'final' AND a.final <> 'cancelled' THEN jsonb_build_object(
           'cpuTimeS', round(a.wall_s * 0.3, 2), 'wallTimeS', a.wall_s, 'peakMemoryMb', a.memory_mb,
           'gpuVramMb', NULL, 'agentLoadPctAtDispatch', a.load_pct, 'estimatedDurationS', a.wall_s,
           'estimateSource', 'history', 'complexity', a.complexity) END,
         CASE WHEN l.stage = 'final' AND a.final <> 'succeeded' THEN jsonb_build_object(
           'message', a.services[1] || ': ' || a.final || ' (' || a.failure_class || ')',
           'context', jsonb_build_object('agent', a.agent, 'attempt', 1)) END,
         CASE WHEN l.stage = 'final' THEN a.failure_class END,
         $3::timestamptz + ((b.block * ${ROWS_PER_BLOCK} + l.pos) * $4::bigint
                            + (((hashint8extended(b.block * ${ROWS_PER_BLOCK} + l.pos, 7) % 900) + 900) % 900) * $4::bigint / 1000)
                           * interval '1 microsecond'
  FROM generate_series($1::bigint, $2::bigint) AS b(block)
  CROSS JOIN (VALUES ${LAYOUT.join(', ')}) AS l(pos, slot, stage)
  CROSS JOIN LATERAL (SELECT b.block * ${TASKS_PER_BLOCK} + l.slot AS k) AS task
  CROSS JOIN LATERAL (
    SELECT ${sqlTextArray(ACTION_MIX)}[1 + ${pickSql(1, ACTION_MIX.length)}] AS action,
           s.service_count, s.first_service,
           (ARRAY[${sqlTextArray(SERVICES)}[1 + s.first_service],
                  ${sqlTextArray(SERVICES)}[1 + (s.first_service + 3) % ${SERVICES.length}],
                  ${sqlTextArray(SERVICES)}[1 + (s.first_service + 7) % ${SERVICES.length}]])[1:s.service_count] AS services,
           ${sqlTextArray(AGENTS)}[1 + ${pickSql(3, AGENTS.length)}] AS agent,
           ${sqlTextArray(REQUESTERS)}[1 + ${pickSql(4, REQUESTERS.length)}] AS requester,
           l.slot = 9 AS waited,
           f.final,
           CASE f.final
             WHEN 'failed' THEN (ARRAY['application_error', 'application_error', 'application_error', 'application_error',
                                       'application_error', 'infrastructure', 'infrastructure', 'infrastructure',
                                       'resource_constraint', 'resource_constraint'])[1 + ${pickSql(6, 10)}]
             WHEN 'timed_out' THEN 'timeout'
             WHEN 'cancelled' THEN 'cancelled'
           END AS failure_class,
           greatest(0, ${pickSql(7, 8)} - 2) AS changed,
           5 + ${pickSql(8, 600)} AS wall_s,
           256 * (1 + ${pickSql(9, 16)}) AS memory_mb,
           ${pickSql(10, 95)} AS load_pct,
           10 * (1 + ${pickSql(11, 9)}) AS priority,
           (ARRAY['low', 'medium', 'high'])[1 + ${pickSql(12, 3)}] AS complexity
    FROM (SELECT ${pickSql(2, SERVICES.length)} AS first_service,
                 CASE WHEN ${pickSql(13, 100)} < 70 THEN 1 WHEN ${pickSql(13, 100)} < 95 THEN 2 ELSE 3 END AS service_count) AS s
    CROSS JOIN (SELECT CASE WHEN ${pickSql(5, 100)} < 85 THEN 'succeeded' WHEN ${pickSql(5, 100)} < 95 THEN 'failed'
                            WHEN ${pickSql(5, 100)} < 98 THEN 'timed_out' ELSE 'cancelled' END AS final) AS f
  ) AS a
  ORDER BY b.block, l.pos`;
