import fs from 'node:fs';
import { createAnsibleRunner, type PlaybookRequest } from '../../activities/ansibleRunner';
import { parseComputeApps } from '../../src/admission/hostCapacity';
import { loadConfig } from '../../src/config';

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

/** Processes whose command line mentions `needle`, e.g. the playbook's `sleep`. */
function pidsRunning(needle: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').includes(needle);
      } catch {
        return false;
      }
    })
    .map(Number);
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
    const gpuMemoryByPid = async () =>
      parseComputeApps([`${process.pid}, 9000`, ...pidsRunning('sleep 3').map((pid) => `${pid}, 300`)].join('\n'));
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10, gpuMemoryByPid });
    const run = await runner.run(request({ playbook: 'sleep.yml', extraVars: { seconds: 3 } }), hooks());
    expect(run.result).toBe('succeeded');
    expect(run.resources.gpuVramMb).toBe(300);
  });

  test('a playbook over its time limit is killed with its whole process group', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10 });
    const started = Date.now();
    const run = await runner.run(request({ playbook: 'sleep.yml', extraVars: { seconds: 41 }, timeoutS: 3 }), hooks());
    expect(run.result).toBe('timed_out');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(pidsRunning('sleep 41')).toEqual([]);
  });

  test('cancellation kills the run at once', async () => {
    const runner = createAnsibleRunner({ playbooksDir, outputTailLines: 10 });
    const controller = new AbortController();
    const progress: string[] = [];
    const running = runner.run(request({ playbook: 'sleep.yml', extraVars: { seconds: 47 } }), hooks(controller.signal, progress));
    while (!progress.includes('sleep')) await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    const run = await running;
    expect(run.result).toBe('cancelled');
    expect(pidsRunning('sleep 47')).toEqual([]);
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
});
