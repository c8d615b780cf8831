// The bench's DBOS Transact peer: the same four-step durable task as ours (capacity read, no-op
// execute, audit insert, no-op) on the same PostgreSQL, in its own process so that its CPU is its
// own. `node peer.mjs <databaseUrl> <tasks> <concurrency>`: after its warm-up it prints `ready` and
// waits for a line on stdin, then runs, prints one JSON line with its figures, and keeps its
// connections open until stdin closes, so the bench can read the PostgreSQL backends' CPU of the
// run alone (a backend that has ended takes its CPU time with it).
import { once } from 'node:events';
import readline from 'node:readline';
import { DBOS } from '@dbos-inc/dbos-sdk';
import pg from 'pg';

const [databaseUrl, tasksArg, concurrencyArg] = process.argv.slice(2);
const tasks = Number(tasksArg);
const concurrency = Number(concurrencyArg);
const WARMUP = 50;

const app = new pg.Pool({ connectionString: databaseUrl, max: concurrency });

const readCapacity = DBOS.registerStep(
  async () => (await app.query('SELECT count(*)::int AS agents FROM agents')).rows[0].agents,
  { name: 'readCapacity' },
);
const execute = DBOS.registerStep(async () => undefined, { name: 'execute' });
const audit = DBOS.registerStep(
  async (taskId) => {
    await app.query('INSERT INTO peer_dbos_audit (task_id) VALUES ($1)', [taskId]);
  },
  { name: 'audit' },
);
const finish = DBOS.registerStep(async () => undefined, { name: 'finish' });

const task = DBOS.registerWorkflow(
  async (taskId) => {
    await readCapacity();
    await execute();
    await audit(taskId);
    await finish();
  },
  { name: 'peerTask' },
);

async function run(prefix, count) {
  let next = 0;
  const starter = async () => {
    for (let i = next++; i < count; i = next++) {
      const handle = await DBOS.startWorkflow(task, { workflowID: `${prefix}-${i}` })(`${prefix}-${i}`);
      await handle.getResult();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, starter));
}

async function main() {
  await app.query('CREATE TABLE IF NOT EXISTS peer_dbos_audit (id bigserial PRIMARY KEY, task_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())');
  DBOS.setConfig({ name: 'opsledger-bench-peer', systemDatabaseUrl: databaseUrl, logLevel: 'error' });
  await DBOS.launch();
  const stamp = Date.now().toString(36);
  await run(`warmup-${stamp}`, WARMUP);
  const input = readline.createInterface({ input: process.stdin });
  const go = once(input, 'line');
  const closed = once(input, 'close');
  console.log('ready');
  await go;
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  await run(`run-${stamp}`, tasks);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const audited = (await app.query('SELECT count(*)::int AS n FROM peer_dbos_audit WHERE task_id LIKE $1', [`run-${stamp}-%`])).rows[0].n;
  console.log(JSON.stringify({ tasks, seconds, tasksPerS: tasks / seconds, cpuMsPerTask: (cpu.user + cpu.system) / 1000 / tasks, audited }));
  await closed;
  await DBOS.shutdown();
  await app.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
