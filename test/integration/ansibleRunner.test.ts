import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAnsibleRunner, type PlaybookRequest } from '../../activities/ansibleRunner';
import { parseComputeApps } from '../../src/admission/hostCapacity';
import { loadConfig } from '../../src/config';
import { pidsRunning } from '../support/processes';

const playbooksDir = loadConfig({}).OPSLEDGER_PLAYBOOKS_DIR;
const request = (over: Partial<PlaybookRequest> = {}): PlaybookRequest => ({
  taskId: 'runner-test',
  playbook: 'ping.yml',
  inventory: 'localhost,',
  extraVars: {},
  secretVars: {},
  checkMode: false,
  timeoutS: 60,
  ...over,
});
const hooks = (signal = new AbortController().signal, progress: string[] = []) => ({
  signal,
  onProgress: (p: { task?: string }) => {
    if (p.task) progress.push(p.task);
  },
});

/**
 * A playbooks folder with one playbook whose command runs until the file `seen` exists, so a test
 * can keep it running until a sample has seen it rather than for a guessed number of seconds.
 */
function playbookUntilSeen(): { playbooksDir: string; seen: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-runner-'));
  const seen = path.join(dir, 'seen');
  fs.writeFileSync(
    path.join(dir, 'until-seen.yml'),
    `- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: wait until seen
      ansible.builtin.shell: "until [ -e ${seen} ]; do sleep 0.1; done"
      changed_when: false
`,
  );
  return { playbooksDir: dir, seen };
}

describe('the ansible-playbook runner', () => {
  test('reports progress, keeps only the last N output lines, and measures the process tree', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 3 });
    const progress: string[] = [];
    const run = await runner.run(request({ extraVars: { message: 'tail me' } }), hooks(undefined, progress));
    expect(run.result).toBe('succeeded');
    expect(progress).toEqual(['ping the host', 'report the message']);
    expect(run.outputTail).toEqual(['TASK [report the message]', 'ok: [localhost] tail me', expect.stringMatching(/^RECAP localhost: ok=2/)]);
    expect(run.resources.cpuTimeS).toBeGreaterThan(0.1);
    expect(run.resources.peakMemoryMb).toBeGreaterThan(20);
    expect(run.resources.gpuVramMb).toBeNull();
  });

  test('attributes GPU memory to the playbook’s own processes only', async () => {
    // nvidia-smi's per-process answer, as read on an H100 ("413, 2566"), with the playbook's
    // `sleep` holding 300 MiB and an unrelated process holding 9000.
    expect(parseComputeApps('413, 2566\n')).toEqual(new Map([[413, 2566]]));
    expect(parseComputeApps('')).toEqual(new Map());
    // The playbook's shell holds the 300 MiB; it ends only once a sample has attributed them.
    const fixture = playbookUntilSeen();
    const gpuMemoryByPid = async () => {
      const holders = pidsRunning(fixture.seen);
      if (holders.length > 0) fs.writeFileSync(fixture.seen, '');
      return parseComputeApps([`${process.pid}, 9000`, ...holders.map((pid) => `${pid}, 300`)].join('\n'));
    };
    const runner = createAnsibleRunner({ playbooksDir: fixture.playbooksDir, outputTailLines: 10, gpuMemoryByPid });
    try {
      const run = await runner.run(request({ playbook: 'until-seen.yml' }), hooks());
      expect(run.result).toBe('succeeded');
      expect(run.resources.gpuVramMb).toBe(300);
    } finally {
      fs.rmSync(fixture.playbooksDir, { recursive: true, force: true });
    }
  });

  test('samples a fork whose parent ended: the wrapper is its subreaper, so it stays in the tree', async () => {
    const fixture = playbookUntilSeen();
    const orphan = path.join(fixture.playbooksDir, 'orphan.sh');
    fs.writeFileSync(orphan, `until [ -e ${fixture.seen} ]; do sleep 0.1; done\n`);
    // The subshell starts orphan.sh and exits at once; the task's own command line names the
    // script only through a variable, so the one process whose command line names it is the orphan.
    fs.writeFileSync(
      path.join(fixture.playbooksDir, 'orphan.yml'),
      `- hosts: all
  connection: local
  gather_facts: false
  tasks:
    - name: leave an orphan until it is seen
      ansible.builtin.shell: |
        o=orph; (sh ${fixture.playbooksDir}/\${o}an.sh &)
        until [ -e ${fixture.seen} ]; do sleep 0.1; done
      changed_when: false
`,
    );
    // Asked just after each sample: a holder there at the ask before was there for this sample too.
    let heldBefore: number[] = [];
    const gpuMemoryByPid = async () => {
      const holders = pidsRunning(orphan);
      if (holders.some((pid) => heldBefore.includes(pid))) fs.writeFileSync(fixture.seen, '');
      heldBefore = holders;
      return parseComputeApps(holders.map((pid) => `${pid}, 300`).join('\n'));
    };
    const runner = createAnsibleRunner({ playbooksDir: fixture.playbooksDir, outputTailLines: 10, gpuMemoryByPid });
    try {
      const run = await runner.run(request({ playbook: 'orphan.yml' }), hooks());
      expect(run.result).toBe('succeeded');
      expect(run.resources.gpuVramMb).toBe(300);
    } finally {
      fs.rmSync(fixture.playbooksDir, { recursive: true, force: true });
    }
  });

  test('a playbook over its time limit is killed with its whole process group', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10 });
    // Longer than this test may take: only the limit can end it in time, however busy the machine.
    const run = await runner.run(request({ playbook: 'sleep.yml', extraVars: { seconds: 401 }, timeoutS: 3 }), hooks());
    expect(run.result).toBe('timed_out');
    expect(run.resources.wallTimeS).toBeGreaterThanOrEqual(3);
    expect(pidsRunning('sleep 401')).toEqual([]);
  });

  test('cancellation kills the run at once', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10 });
    const controller = new AbortController();
    const progress: string[] = [];
    // Longer than this test may take: a cancellation that only waited could not end it in time.
    const running = runner.run(request({ playbook: 'sleep.yml', extraVars: { seconds: 470 } }), hooks(controller.signal, progress));
    while (!progress.includes('sleep')) await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    const run = await running;
    expect(run.result).toBe('cancelled');
    expect(pidsRunning('sleep 470')).toEqual([]);
  });

  test('secrets reach the playbook but not its command line, and are scrubbed from what it printed', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10 });
    let seenInArgv = false;
    const watch = setInterval(() => {
      if (pidsRunning('s3cr3t-runner').length > 0) seenInArgv = true;
    }, 50);
    const run = await runner.run(request({ secretVars: { message: 's3cr3t-runner' } }), hooks());
    clearInterval(watch);
    expect(run.result).toBe('succeeded');
    expect(seenInArgv).toBe(false);
    expect(run.outputTail).toContain('ok: [localhost] [secret]');
  });

  test('a playbook outside the folder, or missing, is refused before anything runs', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10 });
    await expect(runner.run(request({ playbook: '../package.json' }), hooks())).rejects.toThrow('outside the playbooks folder');
    await expect(runner.run(request({ playbook: 'missing.yml' }), hooks())).rejects.toThrow('does not exist');
  });

  test('a command that ends without reading its vars, or cannot run at all, leaves no vars folder behind and says why', async () => {
    // The wrapper's folder goes under TMPDIR, which the runner passes on: a private one, to look into.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-vars-home-'));
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = tmp;
    try {
      // /bin/false exits at once, before or after the hand-over thread waits on the FIFO: both orders, many times.
      const quitting = createAnsibleRunner({ playbooksDir, outputTailLines: 10, ansiblePlaybook: '/bin/false' });
      for (let i = 0; i < 20; i++) expect((await quitting.run(request({ extraVars: { n: i } }), hooks())).result).toBe('failed');
      const missing = path.join(tmp, 'no-such-ansible-playbook');
      const absent = await createAnsibleRunner({ playbooksDir, outputTailLines: 10, ansiblePlaybook: missing }).run(request(), hooks());
      expect(absent).toMatchObject({ result: 'failed', keyMessages: [`cannot run ${missing}: No such file or directory`] });
      expect(fs.readdirSync(tmp)).toEqual([]);
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a remote host list or a reserved variable is refused before anything runs, whoever built the request', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10 });
    await expect(runner.run(request({ inventory: 'localhost,attacker.example' }), hooks())).rejects.toThrow('names a host other than localhost');
    await expect(runner.run(request({ extraVars: { ansible_connection: 'ssh' } }), hooks())).rejects.toThrow(
      'extraVars.ansible_connection: reserved',
    );
    await expect(runner.run(request({ secretVars: { ansible_become_password: 'x' } }), hooks())).rejects.toThrow(
      'secretVars.ansible_become_password: reserved',
    );
  });
});
