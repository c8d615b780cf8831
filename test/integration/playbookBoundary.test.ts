import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TaskWorkflowInput } from '../../contracts';
import { hashToken } from '../../src/api/auth';
import { loadConfig } from '../../src/config';
import { projectRoot } from '../../src/paths';
import { startTask } from '../../src/temporal/client';
import { api, eventually, startTestStack, TEST_TOKENS, untilAgentReported, type TestStack } from '../support/stack';
import { testEnv } from '../support/testEnv';

/**
 * What a task submitter (orchestrator token), a playbook, or someone who can start workflows on
 * Temporal can make a worker do. The workers here are real `opsledger worker` processes (run
 * `npx tsc -p tsconfig.build.json` first), holding the secrets a production worker holds.
 */

const FINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
const nonce = crypto.randomBytes(4).toString('hex');

/** What a worker's environment holds that no playbook may see. */
const WORKER_SECRETS = {
  OPSLEDGER_SECRET_KEY: `boundary-secret-key-${nonce}`,
  OPSLEDGER_CURSOR_SECRET: `boundary-cursor-secret-${nonce}`,
  OPSLEDGER_TOKENS: `boundary:admin:${hashToken(`boundary-token-${nonce}`)}`,
  DATABASE_URL: testEnv('databaseUrl'),
};

/** A copy of the playbooks folder, with one more playbook that shows `token` wherever a playbook can. */
function fixturePlaybooks(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-boundary-'));
  fs.cpSync(loadConfig({}).OPSLEDGER_PLAYBOOKS_DIR, dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'show-token.yml'),
    `- name: "play {{ token }}"
  hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: "structured {{ token }}"
      ansible.builtin.debug:
        msg: "{{ {'token': token, 'note': 'inside a structure'} }}"
    - name: long
      ansible.builtin.debug:
        msg: "{{ 'x' * 990 }}{{ token }}"
    - name: "wait {{ token }}"
      ansible.builtin.wait_for:
        path: "{{ gate }}"
        timeout: 300
    - name: fail
      ansible.builtin.fail:
        msg: "{{ token }}"
`,
  );
  return dir;
}

type Worker = { child: ChildProcess; output: () => string; stop(): Promise<void> };

const workerEnv = (stack: TestStack, playbooksDir: string): NodeJS.ProcessEnv => ({
  ...process.env,
  ...WORKER_SECRETS,
  TEMPORAL_ADDRESS: stack.config.TEMPORAL_ADDRESS,
  OPSLEDGER_TASK_QUEUE: stack.config.OPSLEDGER_TASK_QUEUE,
  OPSLEDGER_AGENT_ID: stack.config.OPSLEDGER_AGENT_ID,
  OPSLEDGER_PLAYBOOKS_DIR: playbooksDir,
  OPSLEDGER_AGENT_REPORT_S: '1',
  // This machine's real load must not hold the test up.
  OPSLEDGER_LOAD_THRESHOLD_PCT: '1000',
  // Activities' progress lines come out at debug: they are among what must not carry a secret.
  LOG_LEVEL: 'debug',
});

function startWorkerProcess(env: NodeJS.ProcessEnv): Worker {
  let output = '';
  const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'opsledger.js'), 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (chunk: Buffer) => (output += chunk.toString());
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function startBoundary(): Promise<{ stack: TestStack; worker: Worker; playbooksDir: string }> {
  const playbooksDir = fixturePlaybooks();
  const stack = await startTestStack({
    worker: false,
    env: { OPSLEDGER_SECRET_KEY: WORKER_SECRETS.OPSLEDGER_SECRET_KEY, OPSLEDGER_PLAYBOOKS_DIR: playbooksDir },
  });
  const worker = startWorkerProcess(workerEnv(stack, playbooksDir));
  await untilAgentReported(stack.baseUrl, stack.config.OPSLEDGER_AGENT_ID);
  return { stack, worker, playbooksDir };
}

type Row = { status: string; outcome: any; failure: any; failureClass?: string };

const submit = (stack: TestStack, body: object) =>
  api(stack.baseUrl, 'POST', '/api/v1/tasks', { action: 'check', services: ['boundary'], ...body }, TEST_TOKENS.orchestrator);

/** The task's final row, as any viewer reads it. */
const finalRow = (stack: TestStack, taskId: string): Promise<Row> =>
  eventually(async () => {
    const rows: Row[] = (await api(stack.baseUrl, 'GET', `/api/v1/audit/tasks/${taskId}`, undefined, TEST_TOKENS.viewer)).json?.rows ?? [];
    return rows.find((r) => FINAL.includes(r.status));
  }, 120_000);

const liveState = async (stack: TestStack, taskId: string) =>
  (await api(stack.baseUrl, 'GET', `/api/v1/tasks/${taskId}`, undefined, TEST_TOKENS.viewer)).json;

/** A submitted task's workflow input, as Temporal's history keeps it and anyone with access to Temporal reads it. */
async function workflowInput(stack: TestStack, taskId: string): Promise<TaskWorkflowInput> {
  const history = await stack.temporal.workflow.getHandle(taskId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return defaultPayloadConverter.fromPayload<TaskWorkflowInput>(payload as Payload);
}

/** What the playbook's tasks printed, in order. */
const printed = (row: Row): string[] =>
  row.outcome.outputTail.filter((l: string) => l.startsWith('ok: [localhost] ')).map((l: string) => l.slice('ok: [localhost] '.length));

/** Every form of `text` a row or a log could carry it in: as is, or JSON-escaped once more. */
const leaks = (haystack: string, text: string) =>
  haystack.includes(text) || haystack.includes(JSON.stringify(text).slice(1, -1));

describe('the playbook boundary', () => {
  let stack: TestStack;
  let worker: Worker;
  let playbooksDir: string;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-boundary-markers-'));
  const marker = (name: string) => path.join(scratch, name);

  beforeAll(async () => {
    ({ stack, worker, playbooksDir } = await startBoundary());
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await stack?.close();
    fs.rmSync(playbooksDir, { recursive: true, force: true });
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  test('Jinja in extraVars and secretVars reaches the playbook as text and never runs on the worker', async () => {
    const asExtra = `{{ lookup('pipe', 'touch ${marker('extra')}; id -un') }}`;
    const nested = { list: [`{{ lookup('pipe', 'touch ${marker('nested')}') }}`], count: 3, ratio: 1e-7, on: true, none: null };
    const awkward = 'quote" back\\slash\nnew line ü 😀 \u0085 !unsafe &anchor *alias {% raw %}';
    const ids = ['extra', 'secret', 'nested', 'awkward'].map((kind) => `jinja-${kind}-${nonce}`);
    const bodies = [
      { extraVars: { message: asExtra } },
      { secretVars: { message: `{{ lookup('pipe', 'touch ${marker('secret')}') }}` } },
      { extraVars: { message: nested } },
      { extraVars: { message: awkward } },
    ];
    for (const [i, body] of bodies.entries()) {
      expect((await submit(stack, { taskId: ids[i], playbook: 'ping.yml', ...body })).status).toBe(202);
    }
    const [extra, secret, structured, text] = (await Promise.all(ids.map((id) => finalRow(stack, id)))) as [Row, Row, Row, Row];
    expect([extra, secret, structured, text].map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(extra.outcome.outputTail).toContain(`ok: [localhost] ${asExtra}`);
    expect(secret.outcome.outputTail).toContain('ok: [localhost] [secret]');
    expect(JSON.parse(printed(structured)[0]!)).toEqual(nested);
    expect(text.outcome.outputTail).toContain(`ok: [localhost] ${awkward}`);
    for (const name of ['extra', 'secret', 'nested']) expect(fs.existsSync(marker(name))).toBe(false);
  });

  test('variables that steer the connection, interpreter or privilege, and remote host lists, are refused at submit', async () => {
    const interpreter = await submit(stack, { playbook: 'ping.yml', extraVars: { ansible_python_interpreter: `touch ${marker('interpreter')}; python3` } });
    expect(interpreter.status).toBe(400);
    expect(interpreter.json.errors).toEqual([{ field: 'extraVars.ansible_python_interpreter', message: expect.stringMatching(/^reserved/) }]);

    const elsewhere = await submit(stack, {
      playbook: 'ping.yml',
      inventory: 'attacker.example,',
      extraVars: { ansible_connection: 'ssh', ansible_host: '203.0.113.9', hostvars: {} },
      secretVars: { ansible_become_password: 'x' },
    });
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.json.errors.map((e: { field: string }) => e.field).sort()).toEqual([
      'extraVars.ansible_connection',
      'extraVars.ansible_host',
      'extraVars.hostvars',
      'inventory',
      'secretVars.ansible_become_password',
    ]);
  });

  test('a workflow started on Temporal directly with a reserved variable is refused by the worker before anything runs', async () => {
    const taskId = `direct-base-${nonce}`;
    await submit(stack, { taskId, playbook: 'ping.yml' });
    await finalRow(stack, taskId);
    const forged = `direct-interpreter-${nonce}`;
    await startTask(stack.temporal, {
      ...(await workflowInput(stack, taskId)),
      taskId: forged,
      extraVars: { ansible_python_interpreter: `touch ${marker('direct')}; python3` },
    });
    const row = await finalRow(stack, forged);
    expect(row.status).toBe('failed');
    expect(row.failure.message).toContain('extraVars.ansible_python_interpreter: reserved');
    // The task's own fault: no other agent would take it, so it is not sent round admission again.
    expect(row.failureClass).toBe('application_error');
    expect(fs.existsSync(marker('direct'))).toBe(false);
  });

  test('a playbook sees none of the worker’s environment: no key, token hash or database password', async () => {
    const names = [...Object.keys(WORKER_SECRETS), 'OPSLEDGER_TEST_DATABASE_URL', 'TEMPORAL_ADDRESS'];
    const taskId = `environment-${nonce}`;
    await submit(stack, { taskId, playbook: 'environment.yml', extraVars: { names } });
    const row = await finalRow(stack, taskId);
    expect(row.status).toBe('succeeded');
    const [namesLine, valuesLine] = printed(row) as [string, string];
    const seen = namesLine.split(' ');
    expect(seen).toEqual(expect.arrayContaining(['PATH', 'HOME', 'ANSIBLE_STDOUT_CALLBACK']));
    // What python3 sets for itself when started with nothing but PATH (a pyenv shim sets PYENV_*) is its own.
    const launcherOwn = execFileSync('python3', ['-c', 'import os; print(" ".join(os.environ))'], { env: { PATH: process.env.PATH } })
      .toString()
      .trim()
      .split(' ');
    const fromWorker = Object.keys(workerEnv(stack, playbooksDir)).filter((name) => !launcherOwn.includes(name));
    const passes = /^(PATH|HOME|LANG|LC_\w+|TMPDIR|ANSIBLE_(STDOUT_CALLBACK|RETRY_FILES_ENABLED|NOCOLOR|PIPELINING)|PYTHONUNBUFFERED)$/;
    expect(seen.filter((name) => fromWorker.includes(name) && !passes.test(name))).toEqual([]);
    expect(JSON.parse(valuesLine)).toEqual(Object.fromEntries(names.map((n) => [n, ''])));
    const everything = JSON.stringify(row);
    for (const value of Object.values(WORKER_SECRETS)) expect(leaks(everything, value)).toBe(false);
  });

  test('a secret is redacted in every form a playbook can show it: quoted, JSON-escaped, past the cut, in play and task names, progress and logs', async () => {
    // Quote, backslash and non-ASCII change how JSON writes it; the nonce shows any surviving piece.
    const token = `Tk${nonce}"\\ü-end`;
    const gate = marker('gate');
    const taskId = `redaction-${nonce}`;
    await submit(stack, { taskId, playbook: 'show-token.yml', extraVars: { gate }, secretVars: { token } });
    const progress = await eventually(async () => {
      const p = (await liveState(stack, taskId)).progress;
      return p?.task?.startsWith('wait ') ? p : undefined;
    });
    expect(progress).toMatchObject({ play: 'play [secret]', task: 'wait [secret]' });
    fs.writeFileSync(gate, '');
    const row = await finalRow(stack, taskId);
    expect(row.status).toBe('failed');
    expect(row.outcome.steps.map((s: { task: string }) => s.task)).toEqual(['structured [secret]', 'long', 'wait [secret]', 'fail']);
    expect(row.outcome.steps[0].play).toBe('play [secret]');
    expect(JSON.parse(printed(row)[0]!)).toEqual({ token: '[secret]', note: 'inside a structure' });
    expect(row.outcome.outputTail).toContain(`ok: [localhost] ${'x'.repeat(990)}[secret]`);
    expect(row.failure.message).toBe('fail on localhost: [secret]');
    const secretPiece = `Tk${nonce}`;
    expect(JSON.stringify(row)).not.toContain(secretPiece);
    expect(worker.output()).toContain('playbook progress');
    expect(worker.output()).not.toContain(secretPiece);
  });

  test('sealed secrets copied from one task into another task’s input do not open there', async () => {
    const owner = `sealed-owner-${nonce}`;
    await submit(stack, { taskId: owner, playbook: 'ping.yml', secretVars: { message: `owner-only-${nonce}` } });
    await finalRow(stack, owner);
    const thief = `sealed-thief-${nonce}`;
    await startTask(stack.temporal, { ...(await workflowInput(stack, owner)), taskId: thief });
    const row = await finalRow(stack, thief);
    expect(row.status).toBe('failed');
    expect(row.failure.message).toContain(`sealed secrets belong to task ${owner}, not to task ${thief}`);
    // Refused before the playbook ran: there is no outcome of a run at all.
    expect(row.outcome?.outputTail).toBeUndefined();
  });
});

describe('a playbook and its worker', () => {
  test('SIGKILL of the worker mid-playbook: every process of the playbook dies with it, and its vars were never on disk', async () => {
    const { stack, worker, playbooksDir } = await startBoundary();
    const gate = path.join(playbooksDir, 'never-written');
    try {
      const taskId = `kill-${nonce}`;
      await submit(stack, { taskId, playbook: 'wait-for-file.yml', extraVars: { path: gate }, secretVars: { vault_token: `kill-${nonce}` } });
      await eventually(async () => ((await liveState(stack, taskId)).progress?.task === 'wait for the file' ? true : undefined));

      const [wrapper] = processes().filter((p) => p.ppid === worker.child.pid && p.cmdline.includes('ansible-playbook'));
      expect(wrapper).toBeDefined();
      const inPlaybookGroup = () => processes().filter((p) => p.pgrp === wrapper!.pid).map((p) => p.pid);
      const playbookProcesses = inPlaybookGroup();
      const ansible = processes().find((p) => p.ppid === wrapper!.pid)!;
      const varsArg = ansible.cmdline.split('\0').find((arg) => arg.startsWith('@'))!;
      expect(varsArg).toMatch(/opsledger-vars-/);
      // Read the moment ansible-playbook opened it: gone from the disk while the playbook still runs.
      expect(fs.existsSync(varsArg.slice(1))).toBe(false);
      expect(fs.existsSync(path.dirname(varsArg.slice(1)))).toBe(false);

      worker.child.kill('SIGKILL');
      await eventually(async () => (playbookProcesses.some(isAlive) ? undefined : true), 15_000);
      expect(inPlaybookGroup().filter(isAlive)).toEqual([]);
    } finally {
      await worker.stop();
      await stack.close();
      fs.rmSync(playbooksDir, { recursive: true, force: true });
    }
  }, 180_000);
});

/** A killed process whose parent is gone may stay a zombie here: it runs no more, which is what counts. */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function processes(): { pid: number; ppid: number; pgrp: number; cmdline: string }[] {
  return fs
    .readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        const [, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
        return [{ pid: Number(entry), ppid: ppid!, pgrp: pgrp!, cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8') }];
      } catch {
        return []; // exited while listed
      }
    });
}
