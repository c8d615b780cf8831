import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { freePort } from '../support/ports';
import { api, eventually, untilAgentReported } from '../support/stack';
import { testEnv } from '../support/testEnv';
import { expectRanOnce } from '../support/trail';

/**
 * The first README command as a user runs it: `opsledger dev` with no DATABASE_URL or
 * TEMPORAL_ADDRESS brings up embedded PostgreSQL, the Temporal dev server, worker and API;
 * Ctrl-C stops all of it; a second start finds the data of the first.
 */
describe('opsledger dev', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-dev-'));
  let ports: Record<string, number>;
  const running = new Set<ChildProcess>();

  beforeAll(async () => {
    fs.chmodSync(dataDir, 0o755);
    ports = {
      PORT: await freePort(),
      OPSLEDGER_TEMPORAL_DEV_PORT: await freePort(),
      TEMPORAL_UI_PORT: await freePort(),
      OPSLEDGER_EMBEDDED_PG_PORT: await freePort(),
    };
  });
  afterAll(async () => {
    // A failed assertion must not leave a stack (and its PostgreSQL and dev server) behind.
    await Promise.all([...running].map(interrupt));
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const start = (): ChildProcess => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      OPSLEDGER_DATA_DIR: dataDir,
      TEMPORAL_CLI: testEnv('temporalCli'),
      // The worker admits on this host's real load, which a test run on two cores drives high.
      OPSLEDGER_LOAD_THRESHOLD_PCT: '1000',
    };
    delete env.DATABASE_URL;
    delete env.TEMPORAL_ADDRESS;
    for (const [name, port] of Object.entries(ports)) env[name] = String(port);
    const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'opsledger.js'), 'dev'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.resume();
    child.stderr?.resume();
    running.add(child);
    child.once('exit', () => running.delete(child));
    return child;
  };
  const baseUrl = () => `http://127.0.0.1:${ports.PORT}`;
  const up = () =>
    eventually(async () => {
      const res = await fetch(`${baseUrl()}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    }, 90_000);
  function interrupt(child: ChildProcess): Promise<number | null> {
    return new Promise((resolve) => {
      if (child.exitCode !== null) return resolve(child.exitCode);
      child.once('exit', (code) => resolve(code));
      child.kill('SIGINT');
    });
  }
  const leftovers = () =>
    fs
      .readdirSync('/proc')
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dataDir);
        } catch {
          return false;
        }
      });

  test('brings the stack up, runs a task, stops cleanly on Ctrl-C and reuses its data', async () => {
    const first = start();
    await up();
    const ui = await fetch(`http://127.0.0.1:${ports.TEMPORAL_UI_PORT}/`);
    expect(ui.status).toBe(200);

    const taskId = `dev-${Date.now()}`;
    const token = fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    // Ready means the API answers, not that the dev worker's capacity report has landed.
    await untilAgentReported(baseUrl(), undefined, token);
    const submit = await api(
      baseUrl(),
      'POST',
      '/api/v1/tasks',
      { taskId, action: 'deploy', services: ['kuma'], playbook: 'ping.yml' },
      token,
    );
    expect(submit.status).toBe(202);
    const trail = await eventually(async () => {
      const res = await api(baseUrl(), 'GET', `/api/v1/audit/tasks/${taskId}`, undefined, token);
      return res.json?.rows?.some((r: { status: string }) => r.status === 'succeeded') ? res.json.rows : undefined;
    });
    // The dev worker admits on this host's real load: past even the raised threshold it waits for
    // capacity, and, its report being in, for nothing else.
    expectRanOnce(trail, 'succeeded', ['capacity']);
    for (const paused of trail.filter((r: { status: string }) => r.status === 'paused')) {
      expect(paused.outcome.shortfall).toMatch(/above \d+% load/);
    }

    expect(await interrupt(first)).toBe(0);
    await eventually(async () => (leftovers().length === 0 ? true : undefined), 20_000);

    const second = start();
    try {
      await up();
      expect(fs.readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim()).toBe(token);
      const reread = await api(baseUrl(), 'GET', `/api/v1/audit/tasks/${taskId}`, undefined, token);
      expect(reread.json.rows).toEqual(trail);
      const state = await api(baseUrl(), 'GET', `/api/v1/tasks/${taskId}`, undefined, token);
      expect(state.json.status).toBe('succeeded');
    } finally {
      expect(await interrupt(second)).toBe(0);
    }
    await eventually(async () => (leftovers().length === 0 ? true : undefined), 20_000);
  });
});
