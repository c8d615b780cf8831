import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../src/paths';
import { startTestStack, TEST_TOKENS, type TestStack } from '../support/stack';
import { expectRanOnce, IN_PROCESS_STACK_MAY_WAIT_FOR } from '../support/trail';
import { testEnv } from '../support/testEnv';
import { opsledger, type CliResult } from '../support/cli';

/** The CLI started in the background, for a test that acts on what it has printed so far. */
function startOpsledger(args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [path.join(projectRoot, 'bin', 'opsledger.js'), ...args], {
    env: { ...process.env, LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const printed: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const check of printed) check();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<CliResult>((resolve) => child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
  return {
    exited,
    untilPrinted: (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => pattern.test(stdout) && resolve();
        printed.push(check);
        check();
        void exited.then(() => reject(new Error(`exited before printing ${pattern}:\n${stdout}${stderr}`)));
      }),
  };
}

describe('the opsledger CLI', () => {
  let stack: TestStack;
  let env: NodeJS.ProcessEnv;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-cli-'));

  beforeAll(async () => {
    stack = await startTestStack();
    env = {
      OPSLEDGER_API_URL: stack.baseUrl,
      OPSLEDGER_TOKEN: TEST_TOKENS.admin,
      DATABASE_URL: testEnv('databaseUrl'),
    };
  });
  afterAll(async () => {
    await stack?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('submit --follow shows the task live and exits 0 when it succeeds, 1 when it fails', async () => {
    // The playbook runs until the test has seen --follow show it running, then is let go.
    const gate = path.join(dir, `gate-${Date.now()}`);
    const following = startOpsledger(
      ['submit', '--task-id', `cli-ok-${Date.now()}`, '--action', 'deploy', '--service', 'kuma', '--playbook', 'wait-for-file.yml', '--var', `path=${gate}`, '--follow'],
      env,
    );
    await following.untilPrinted(/running on agent-\w+: TASK \[wait for the file\]/);
    fs.writeFileSync(gate, '');
    const ok = await following.exited;
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^submitted: cli-ok-/m);
    expect(ok.stdout).toMatch(/: succeeded on agent-/);

    const failed = await opsledger(
      ['submit', '--action', 'configure', '--service', 'auth', '--playbook', 'fail.yml', '--follow'],
      env,
    );
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/failed \(application_error\)/);
  });

  test('--max-wait is the task\'s maxWaitS; a task no agent could ever take is refused at once', async () => {
    // What the bound does to a waiting task is waitDeadline.test.ts's; here, that the flag is the field.
    const bounded = await opsledger(['submit', '--action', 'check', '--service', 'gpu', '--playbook', 'ping.yml', '--max-wait', '600', '--follow'], env);
    expect(bounded.stderr).toBe('');
    expect(bounded.code).toBe(0);
    const bad = await opsledger(['submit', '--action', 'check', '--service', 'gpu', '--playbook', 'ping.yml', '--max-wait', 'soon'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/400 .*maxWaitS/);

    const never = await opsledger(['submit', '--action', 'check', '--service', 'gpu', '--playbook', 'ping.yml', '--gpu-vram-mb', '1000000'], env);
    expect(never.code).toBe(1);
    expect(never.stderr).toContain('422 No agent can ever fit the task');
    expect(never.stderr).toContain('needs 1000000 MiB GPU VRAM');
  });

  test('a bad submission is explained, naming the field', async () => {
    const bad = await opsledger(['submit', '--action', 'explode', '--service', 'kuma', '--playbook', 'ping.yml'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('400 Invalid request');
    expect(bad.stderr).toContain('action:');
  });

  test('queue and the operator commands answer through the API', async () => {
    const queue = await opsledger(['queue', '--json'], env);
    expect(queue.code).toBe(0);
    expect(JSON.parse(queue.stdout)).toHaveProperty('tasks');
    const refused = await opsledger(['pause', 'no-such-task'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('404');
  });

  test('audit lists ledger rows with the API filters, as a table or JSON', async () => {
    const taskId = `cli-audit-${Date.now()}`;
    await opsledger(['submit', '--task-id', taskId, '--action', 'check', '--service', 'dns', '--playbook', 'ping.yml', '--follow'], env);
    const json = await opsledger(['audit', '--task-id', taskId, '--json'], env);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as { status: string; intents: string[] }[];
    // Newest first.
    expectRanOnce([...rows].reverse(), 'succeeded', IN_PROCESS_STACK_MAY_WAIT_FOR);
    expect(rows[0]!.intents).toEqual(['check_dns']);
    const table = await opsledger(['audit', '--intent', 'check_dns', '--status', 'succeeded', '--limit', '5'], env);
    expect(table.stdout).toContain(taskId);
    const bad = await opsledger(['audit', '--from', 'yesterday'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('from');
  });

  test('audit checkpoint, then audit verify against it', async () => {
    const signerKey = path.join(dir, 'checkpoint-signer.key');
    const keygen = await opsledger(['audit', 'keygen', '--name', 'cli-test.example/ledger', '--out', signerKey], env);
    expect(keygen.code).toBe(0);
    const verifierKey = keygen.stdout.trim();
    expect(verifierKey).toMatch(/^cli-test\.example\/ledger\+[0-9a-f]{8}\+\S+$/);
    expect((fs.statSync(signerKey).mode & 0o777).toString(8)).toBe('600');

    const file = path.join(dir, 'head.checkpoint');
    const checkpoint = await opsledger(['audit', 'checkpoint', '--out', file, '--key', signerKey], env);
    expect(checkpoint.stderr).toBe('');
    expect(checkpoint.stdout).toMatch(/^checkpoint written to .*: chain_seq \d+/);
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');

    // The auditor's side: the checkpoint and the verifier key, no private key left anywhere.
    fs.rmSync(signerKey);
    const auditor = { ...env, OPSLEDGER_CHECKPOINT_VERIFIER_KEY: verifierKey };
    const verify = await opsledger(['audit', 'verify', '--checkpoint', file], auditor);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^ledger intact: \d+ rows checked/);
    expect(verify.stdout).toContain('checkpoint matches');

    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/\n(\d+)\n/, (_, seq: string) => `\n${Number(seq) + 1}\n`));
    const edited = await opsledger(['audit', 'verify', '--checkpoint', file], auditor);
    expect(edited.code).toBe(1);
    expect(edited.stderr).toContain('does not verify: the checkpoint was changed after it was signed');

    const noVerifierKey = await opsledger(['audit', 'verify', '--checkpoint', file], env);
    expect(noVerifierKey.code).toBe(1);
    expect(noVerifierKey.stderr).toContain('OPSLEDGER_CHECKPOINT_VERIFIER_KEY');
    const noSignerKey = await opsledger(['audit', 'checkpoint', '--out', file], env);
    expect(noSignerKey.code).toBe(1);
    expect(noSignerKey.stderr).toContain("'--key <file>'");
  });
});
