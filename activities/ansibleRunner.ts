import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import type { Json, PlaybookProgress, PlaybookRun } from '../contracts';
import { AnsibleEventFold } from './ansibleEvents';
import { PlaybookNotFoundError } from '../src/errors';
import { killProcessGroup, sampleProcessGroup } from './processTree';

export interface PlaybookRequest {
  taskId: string;
  /** Path inside the playbooks folder. */
  playbook: string;
  inventory: string;
  extraVars: Record<string, Json>;
  secretVars: Record<string, string>;
  checkMode: boolean;
  timeoutS: number;
}

export interface RunHooks {
  signal: AbortSignal;
  onProgress(progress: PlaybookProgress): void;
}

/** Runs one playbook; the ansible implementation below, a no-op one for benchmarks. */
export interface PlaybookRunner {
  run(request: PlaybookRequest, hooks: RunHooks): Promise<PlaybookRun>;
}

export interface AnsibleRunnerOptions {
  playbooksDir: string;
  outputTailLines: number;
  ansiblePlaybook?: string;
  /** GPU memory held per pid, in MiB, or null where there is no GPU (see hostCapacity.ts). */
  gpuMemoryByPid?: () => Promise<Map<number, number> | null>;
}

// Runs the playbook as its child and reports the CPU time of the whole finished process tree
// (RUSAGE_CHILDREN covers every descendant that was waited for) on file descriptor 3.
const RUSAGE_WRAPPER = `
import json, os, resource, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
code = child.wait()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
os.write(3, json.dumps({"cpuTimeS": usage.ru_utime + usage.ru_stime}).encode())
sys.exit(code if code >= 0 else 128 - code)
`;

const MEMORY_SAMPLE_MS = 250;
const GPU_SAMPLE_EVERY = 4;

export function createAnsibleRunner(options: AnsibleRunnerOptions): PlaybookRunner {
  const ansiblePlaybook = options.ansiblePlaybook ?? 'ansible-playbook';
  return {
    async run(request, hooks) {
      const playbookPath = await resolveInside(options.playbooksDir, request.playbook, 'playbook');
      const inventory = request.inventory.includes(',')
        ? request.inventory
        : await resolveInside(options.playbooksDir, request.inventory, 'inventory');
      const varsDir = await fs.mkdtemp(path.join(os.tmpdir(), 'opsledger-vars-'));
      try {
        // Vars go through a private file, not argv, so secrets never show in `ps`.
        const varsFile = path.join(varsDir, 'vars.json');
        await fs.writeFile(varsFile, JSON.stringify({ ...request.extraVars, ...request.secretVars }), { mode: 0o600 });
        const args = ['-c', RUSAGE_WRAPPER, ansiblePlaybook, '-i', inventory, '-e', `@${varsFile}`];
        if (request.checkMode) args.push('--check');
        args.push(playbookPath);
        const run = await spawnPlaybook(args, request, hooks, {
          tailLines: options.outputTailLines,
          cwd: path.dirname(playbookPath),
          gpuMemoryByPid: options.gpuMemoryByPid,
        });
        return redactSecrets(run, Object.values(request.secretVars));
      } finally {
        await fs.rm(varsDir, { recursive: true, force: true });
      }
    },
  };
}

function spawnPlaybook(
  args: string[],
  request: PlaybookRequest,
  hooks: RunHooks,
  { tailLines, cwd, gpuMemoryByPid }: { tailLines: number; cwd: string; gpuMemoryByPid?: AnsibleRunnerOptions['gpuMemoryByPid'] },
): Promise<PlaybookRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('python3', args, {
      cwd,
      detached: true, // its own process group, so cancellation kills every fork
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ANSIBLE_STDOUT_CALLBACK: 'ansible.posix.jsonl',
        ANSIBLE_RETRY_FILES_ENABLED: 'False',
        ANSIBLE_NOCOLOR: '1',
        ANSIBLE_HOST_KEY_CHECKING: 'False',
        PYTHONUNBUFFERED: '1',
      },
    });
    const fold = new AnsibleEventFold();
    const tail: string[] = [];
    const keep = (lines: string[]) => {
      tail.push(...lines);
      if (tail.length > tailLines) tail.splice(0, tail.length - tailLines);
    };
    let stopReason: 'timed_out' | 'cancelled' | undefined;
    let peakRss = 0;
    // null until nvidia-smi answers: a host without a GPU reports no VRAM rather than zero.
    let peakVramMb: number | null = null;
    let gpuSamples = 0;
    let usage = '';

    const pgid = child.pid;
    if (pgid === undefined) {
      child.once('error', reject);
      return;
    }
    const stop = (reason: 'timed_out' | 'cancelled') => {
      stopReason ??= reason;
      killProcessGroup(pgid);
    };
    const sampler = setInterval(() => {
      const { pids, rssBytes } = sampleProcessGroup(pgid);
      peakRss = Math.max(peakRss, rssBytes);
      // nvidia-smi costs tens of milliseconds: ask it once a second.
      if (gpuMemoryByPid && gpuSamples++ % GPU_SAMPLE_EVERY === 0) {
        void gpuMemoryByPid().then((byPid) => {
          if (byPid === null) return;
          const held = pids.reduce((sum, pid) => sum + (byPid.get(pid) ?? 0), 0);
          peakVramMb = Math.max(peakVramMb ?? 0, held);
        });
      }
    }, MEMORY_SAMPLE_MS);
    const timer = setTimeout(() => stop('timed_out'), request.timeoutS * 1000);
    const onAbort = () => stop('cancelled');
    hooks.signal.addEventListener('abort', onAbort);
    if (hooks.signal.aborted) onAbort();

    lines(child.stdout as Readable).on('line', (line) => {
      const before = fold.progress.task;
      keep(fold.accept(line));
      if (fold.progress.task !== before) hooks.onProgress(fold.progress);
    });
    lines(child.stderr as Readable).on('line', (line) => {
      if (line.trim()) keep([`stderr: ${line}`]);
    });
    (child.stdio[3] as Readable).on('data', (chunk: Buffer) => {
      usage += chunk.toString();
    });

    child.once('error', (err) => {
      clearInterval(sampler);
      clearTimeout(timer);
      hooks.signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.once('close', (code) => {
      clearInterval(sampler);
      clearTimeout(timer);
      hooks.signal.removeEventListener('abort', onAbort);
      const wallTimeS = Number(process.hrtime.bigint() - started) / 1e9;
      const keyMessages = [...fold.keyMessages];
      if (code !== 0 && keyMessages.length === 0 && !stopReason) {
        // Failed before any task ran (syntax error, missing role...): ansible explains on stderr.
        keyMessages.push(...tail.filter((l) => l.startsWith('stderr: ')).slice(-5).map((l) => l.slice(8)));
      }
      resolve({
        result: stopReason ?? (code === 0 ? 'succeeded' : 'failed'),
        exitCode: code,
        counts: fold.counts,
        keyMessages,
        steps: fold.steps,
        outputTail: tail,
        resources: {
          cpuTimeS: round(parseCpuTime(usage), 3),
          wallTimeS: round(wallTimeS, 3),
          peakMemoryMb: round(peakRss / 1024 / 1024, 1),
          gpuVramMb: peakVramMb,
          agentLoadPctAtDispatch: null,
        },
      });
    });
  });
}

function lines(stream: Readable): readline.Interface {
  return readline.createInterface({ input: stream, crlfDelay: Infinity });
}

function parseCpuTime(text: string): number {
  try {
    return Number((JSON.parse(text) as { cpuTimeS: number }).cpuTimeS) || 0;
  } catch {
    return 0; // killed before it could report
  }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Resolves a path inside `root`, following symlinks, so nothing outside the folder can run. */
async function resolveInside(root: string, relative: string, what: string): Promise<string> {
  const rootReal = await fs.realpath(root);
  let target: string;
  try {
    target = await fs.realpath(path.resolve(rootReal, relative));
  } catch {
    throw new PlaybookNotFoundError(`${what} ${relative} does not exist in ${root}`);
  }
  if (target !== rootReal && !target.startsWith(rootReal + path.sep)) {
    throw new PlaybookNotFoundError(`${what} ${relative} is outside the playbooks folder`);
  }
  return target;
}

/** A playbook may print a secret it was given; the ledger must not keep it. */
export function redactSecrets(run: PlaybookRun, secrets: string[]): PlaybookRun {
  const values = secrets.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  if (values.length === 0) return run;
  const scrub = (text: string) => values.reduce((out, secret) => out.split(secret).join('[secret]'), text);
  return { ...run, keyMessages: run.keyMessages.map(scrub), outputTail: run.outputTail.map(scrub) };
}
