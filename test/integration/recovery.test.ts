import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { reconcileWithTemporal } from '../../src/admission/reconcile';
import { createAdmissionRepository } from '../../src/admission/repository';
import { agentTaskQueue } from '../../src/config';
import { projectRoot } from '../../src/paths';
import { startTemporalDevServer, type DevServer } from '../../src/temporal/devServer';
import { freePort } from '../support/ports';
import { agentToken, api, eventually, startTestStack, untilAgentReported, type TestStack } from '../support/stack';
import { testEnv } from '../support/testEnv';

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
type Row = { status: string; outcome: any };

const trail = async (stack: TestStack, taskId: string): Promise<Row[]> =>
  (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`)).json?.rows ?? [];
const untilFinal = (stack: TestStack, taskId: string, timeoutMs = 90_000) =>
  eventually(async () => {
    const rows = await trail(stack, taskId);
    return rows.some((r) => FINAL.includes(r.status)) ? rows : undefined;
  }, timeoutMs);
const state = async (stack: TestStack, taskId: string) => (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`)).json;

describe('restarts lose no task and duplicate no row', () => {
  test('kill -9 of the worker in the middle of a playbook: after a restart the task ends with exactly one final row', async () => {
    const stack = await startTestStack({ worker: false });
    const workerEnv = {
      ...process.env,
      DATABASE_URL: testEnv('databaseUrl'),
      TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
      OPSLEDGER_TASK_QUEUE: stack.config.OPSLEDGER_TASK_QUEUE,
      OPSLEDGER_AGENT_ID: stack.config.OPSLEDGER_AGENT_ID,
      OPSLEDGER_AGENT_REPORT_S: '1',
      // This machine's real load must not hold the test up.
      OPSLEDGER_LOAD_THRESHOLD_PCT: '1000',
      LOG_LEVEL: 'warn',
    };
    const startWorker = (): ChildProcess => {
      const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'opsledger.js'), 'worker'], {
        env: workerEnv,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      return child;
    };
    const workers: ChildProcess[] = [];
    // The playbook runs until the test lets it go, so the kill lands mid-run however slow the machine is.
    const gate = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-kill9-')), 'gate');
    try {
      const first = startWorker();
      workers.push(first);
      await untilAgentReported(stack.baseUrl, stack.config.OPSLEDGER_AGENT_ID);
      const taskId = `kill9-${Date.now()}`;
      await api(stack.baseUrl, 'POST', '/api/v1/tasks', {
        taskId,
        action: 'restart',
        services: ['portals'],
        playbook: 'wait-for-file.yml',
        extraVars: { path: gate },
      });
      await eventually(async () => ((await state(stack, taskId)).progress?.task === 'wait for the file' ? true : undefined));
      first.kill('SIGKILL');
      workers.splice(workers.indexOf(first), 1);

      const second = startWorker();
      workers.push(second);
      fs.writeFileSync(gate, '');
      const rows = await untilFinal(stack, taskId);
      expect(rows.filter((r) => FINAL.includes(r.status))).toHaveLength(1);
      expect(rows[rows.length - 1]!.status).toBe('succeeded');
      const dispatched = rows.filter((r) => r.status === 'dispatched');
      expect(dispatched.map((r) => r.outcome.attempt)).toEqual([1, 2]);
      // The trail says why a second run was needed.
      expect(dispatched[1]!.outcome.previousAttemptLost).toMatch(/^attempt 1 on agent-\w+: .*(timeout|Heartbeat)/i);
    } finally {
      // Every worker still running, the first too when the test failed before killing it.
      for (const worker of workers) {
        const exited = new Promise((resolve) => worker.once('exit', resolve));
        worker.kill('SIGTERM');
        expect(await exited).toBe(0);
      }
      fs.rmSync(path.dirname(gate), { recursive: true, force: true });
      await stack.close();
    }
  }, 180_000);

  test('a restart of the Temporal dev server while tasks wait: they resume afterwards', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-restart-'));
    const options = {
      cli: testEnv('temporalCli'),
      dbFile: path.join(dir, 'temporal.sqlite'),
      logFile: path.join(dir, 'temporal.log'),
      port: await freePort(),
      httpPort: await freePort(),
      metricsPort: await freePort(),
      namespace: 'default',
      stopsWithCaller: true,
    };
    let server: DevServer = await startTemporalDevServer(options);
    const stack = await startTestStack({
      env: { TEMPORAL_ADDRESS: server.address, OPSLEDGER_AGENT_REPORT_S: '0', OPSLEDGER_AGENT_MAX_AGE_S: '600' },
    });
    const heartbeat = (memoryFreeMb: number) =>
      api(stack.baseUrl, 'PUT', `/api/v1/agents/${stack.config.OPSLEDGER_AGENT_ID}/heartbeat`, {
        pool: stack.config.OPSLEDGER_TASK_QUEUE,
        taskQueue: agentTaskQueue(stack.config),
        cpuCores: 4,
        loadPct: 0,
        memoryTotalMb: 8192,
        memoryFreeMb,
      }, agentToken(stack.config.OPSLEDGER_AGENT_ID));
    try {
      await heartbeat(10);
      const ids = [1, 2, 3].map((i) => `restart-${Date.now()}-${i}`);
      for (const taskId of ids) {
        await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId, action: 'update', services: ['dns'], playbook: 'ping.yml' });
      }
      for (const taskId of ids) {
        await eventually(async () => ((await state(stack, taskId)).status === 'paused' ? true : undefined));
      }

      await server.stop();
      server = await startTemporalDevServer(options);
      await heartbeat(8192);

      for (const taskId of ids) {
        const rows = await untilFinal(stack, taskId);
        expect(rows.map((r) => r.status)).toEqual(['queued', 'paused', 'resumed', 'dispatched', 'succeeded']);
      }
    } finally {
      await stack.close();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  test('on start, pause_queue is reconciled with Temporal: rows of ended tasks go, a waiting task without a row gets it back', async () => {
    const stack = await startTestStack({ env: { OPSLEDGER_AGENT_REPORT_S: '0', OPSLEDGER_AGENT_MAX_AGE_S: '600' } });
    const pool = stack.config.OPSLEDGER_TASK_QUEUE;
    const admission = createAdmissionRepository(stack.db, { agentMaxAgeS: 600, loadThresholdPct: 80 });
    try {
      await api(stack.baseUrl, 'PUT', `/api/v1/agents/${stack.config.OPSLEDGER_AGENT_ID}/heartbeat`, {
        pool,
        taskQueue: agentTaskQueue(stack.config),
        cpuCores: 4,
        loadPct: 0,
        memoryTotalMb: 8192,
        memoryFreeMb: 10,
      }, agentToken(stack.config.OPSLEDGER_AGENT_ID));
      const waiting = `reconcile-${Date.now()}`;
      await api(stack.baseUrl, 'POST', '/api/v1/tasks', { taskId: waiting, action: 'update', services: ['dns'], playbook: 'ping.yml' });
      await eventually(async () => ((await state(stack, waiting)).status === 'paused' ? true : undefined));
      const ghost = `ghost-${Date.now()}`;
      await stack.db.query(
        `INSERT INTO pause_queue (task_id, pool, priority, reason, requirements) VALUES ($1, $2, 50, 'capacity', '{"cpu":0.1,"memoryMb":1,"gpuVramMb":0}')`,
        [ghost, pool],
      );
      await stack.db.query('DELETE FROM pause_queue WHERE task_id = $1', [waiting]);

      const result = await eventually(async () => {
        const r = await reconcileWithTemporal({ admission, temporal: stack.temporal, pool });
        return r.requeued > 0 || (await admission.queue(pool)).some((q) => q.taskId === waiting) ? r : undefined;
      }, 20_000);
      expect(result.removed).toBeGreaterThanOrEqual(1);
      const queued = (await admission.queue(pool)).map((q) => q.taskId);
      expect(queued).toContain(waiting);
      expect(queued).not.toContain(ghost);
      await api(stack.baseUrl, 'POST', `/api/v1/tasks/${waiting}/cancel`, { by: 'test' });
    } finally {
      await stack.close();
    }
  });
});
