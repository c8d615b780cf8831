import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { isLocalHostList, isReservedVarName, RESERVED_VAR_MESSAGE, type Json, type PlaybookProgress, type PlaybookRun } from '../contracts';
import { AnsibleEventFold, secretScrubber, type Scrub } from './ansibleEvents';
import { PlaybookNotFoundError, ValidationError } from '../src/errors';
import { availableMemoryMb, kernelClockUs, oomReportsBetween } from './kernelLog';
import { killProcessGroup, sampleProcessTree } from './processTree';

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

// Runs the playbook as its child (argv: the worker's pid, then the ansible-playbook command), and:
// - dies with the worker, however the worker ends: the kernel sends it SIGHUP when its parent
//   exits, and it kills its whole process group, the playbook's every fork with it; otherwise a
//   playbook would go on unwatched while Temporal runs the task again on another agent;
// - hands the playbook its variables, read from stdin, through a FIFO in a private folder, removed
//   as soon as ansible-playbook opens it: they are never on disk (nor in argv). A path is needed:
//   ansible-playbook resolves `-e @path` through symlinks, so /dev/fd/N cannot name a pipe;
// - reports the CPU time of the whole finished process tree (RUSAGE_CHILDREN covers every
//   descendant that was waited for), and the signal that ended ansible-playbook if one did, on
//   file descriptor 3, which the playbook does not inherit.
// It runs once a playbook, so it imports only what the interpreter has built in or nearly (no
// subprocess, threading, tempfile, json; no site, -S): that halves its 21 ms of CPU a run. It
// uses _signal, which the interpreter has loaded already, not signal, whose enums (and the enum
// module under them) were 3.8 of the 13 ms left.
const PLAYBOOK_WRAPPER = `
import _signal, _thread, ctypes, os, resource, sys
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
os.set_inheritable(3, False)  # first: without the report's descriptor it fails before making anything
vars_dir = os.path.join(os.environ.get("TMPDIR") or "/tmp", "opsledger-vars-" + os.urandom(8).hex())
os.mkdir(vars_dir, 0o700)
vars_path = os.path.join(vars_dir, "vars.yml")
os.mkfifo(vars_path, 0o600)

def forget_vars():
    for remove, path in ((os.unlink, vars_path), (os.rmdir, vars_dir)):
        try:
            remove(path)
        except OSError:
            pass  # already gone: the other thread, or an earlier call, removed it

def die_with_worker(*_):
    forget_vars()
    os.killpg(0, _signal.SIGKILL)

def stop(*_):
    forget_vars()
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
    os.kill(os.getpid(), _signal.SIGTERM)

def signal_name(number):
    # As signal.Signals names it: of two names for one number (SIGABRT, SIGIOT), the first in order.
    names = [name for name, value in vars(_signal).items() if value == number and name.startswith("SIG") and "_" not in name]
    return min(names) if names else f"SIGRTMIN+{number - _signal.SIGRTMIN}"

_signal.signal(_signal.SIGHUP, die_with_worker)
_signal.signal(_signal.SIGTERM, stop)  # cancelled or timed out: the runner signals the whole group
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_PDEATHSIG, _signal.SIGHUP) != 0:
    forget_vars()
    sys.exit("cannot tie the playbook to its worker: prctl(PR_SET_PDEATHSIG) failed")
# A fork whose parent ends is handed to the wrapper, not to init: it stays in the tree the runner samples.
libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
if os.getppid() != int(sys.argv[1]):
    die_with_worker()  # the worker died before the tie was made
vars_yaml = sys.stdin.buffer.read()

def hand_over_vars():
    # Opening blocks until ansible-playbook opens the FIFO to read; then the name can go. Never
    # created here (no O_CREAT): once the name is gone, ansible-playbook ended without reading, and
    # a file made in its place would hold nothing but outlive the wrapper.
    try:
        fifo = os.open(vars_path, os.O_WRONLY)
    except FileNotFoundError:
        return
    forget_vars()
    with open(fifo, "wb") as pipe:
        try:
            pipe.write(vars_yaml)
        except BrokenPipeError:
            pass  # the reader is gone: its own exit code tells what happened

_thread.start_new_thread(hand_over_vars, ())
command = [*sys.argv[2:], "-e", "@" + vars_path]
try:
    child = os.posix_spawnp(command[0], command, os.environ, file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)])
except OSError as err:
    forget_vars()
    sys.exit(f"cannot run {command[0]}: {err.strerror}")
code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
forget_vars()  # ansible-playbook may have failed before it opened the FIFO
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
ended_by = f'"{signal_name(-code)}"' if code < 0 else "null"
os.write(3, f'{{"cpuTimeS": {usage.ru_utime + usage.ru_stime}, "signal": {ended_by}}}'.encode())
sys.exit(code if code >= 0 else 128 - code)
`;

/**
 * What the runner itself sets for ansible-playbook. Pipelining sends each module, its arguments
 * (secrets a task passes on among them) included, through the interpreter's stdin instead of a
 * file under ~/.ansible/tmp, which a killed run would leave behind. Host keys are checked
 * (Ansible's default): an inventory's hosts are trusted through known_hosts, not on first sight.
 */
const ANSIBLE_SETTINGS = {
  ANSIBLE_STDOUT_CALLBACK: 'ansible.posix.jsonl',
  ANSIBLE_RETRY_FILES_ENABLED: 'False',
  ANSIBLE_NOCOLOR: '1',
  ANSIBLE_PIPELINING: 'True',
  PYTHONUNBUFFERED: '1',
};

/**
 * The worker's environment holds its keys, token hashes and database password, and a playbook can
 * read its own environment (`lookup('env', ...)`) into output that viewers read: it gets only these.
 */
const INHERITED_ENV = new Set(['PATH', 'HOME', 'LANG', 'TMPDIR']);

export function playbookEnvironment(workerEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const inherited = Object.entries(workerEnv).filter(([name]) => INHERITED_ENV.has(name) || name.startsWith('LC_'));
  return { ...Object.fromEntries(inherited), ...ANSIBLE_SETTINGS };
}

const MEMORY_SAMPLE_MS = 250;
const GPU_SAMPLE_EVERY = 4;
const KERNEL_LOG_MARGIN_US = 1_000_000n;

export function createAnsibleRunner(options: AnsibleRunnerOptions): PlaybookRunner {
  const ansiblePlaybook = options.ansiblePlaybook ?? 'ansible-playbook';
  let interpreter: Promise<string> | undefined;
  return {
    async run(request, hooks) {
      // The API refuses these at submit; a workflow started on Temporal directly is checked here.
      assertNoReservedVars(request);
      const playbookPath = await resolveInside(options.playbooksDir, request.playbook, 'playbook');
      const inventory = await resolveInventory(options.playbooksDir, request.inventory);
      const args = ['-I', '-S', '-c', PLAYBOOK_WRAPPER, String(process.pid), ansiblePlaybook, '-i', inventory];
      if (request.checkMode) args.push('--check');
      args.push(playbookPath);
      interpreter ??= wrapperInterpreter(ansiblePlaybook);
      return spawnPlaybook(await interpreter, args, unsafeVarsYaml({ ...request.extraVars, ...request.secretVars }), request, hooks, {
        tailLines: options.outputTailLines,
        cwd: path.dirname(playbookPath),
        gpuMemoryByPid: options.gpuMemoryByPid,
        scrub: secretScrubber(Object.values(request.secretVars)),
      });
    },
  };
}

type SpawnOptions = { tailLines: number; cwd: string; gpuMemoryByPid?: AnsibleRunnerOptions['gpuMemoryByPid']; scrub: Scrub };

/**
 * The Python that runs the wrapper: the one ansible-playbook's own first line names, which is on
 * the host whenever ansible is, and starts without what may stand before it on PATH (a version
 * manager's shim for `python3` cost 0.12 CPU-seconds a run, more than the rest of the wrapper).
 * Any other interpreter (a stand-in script) or none found: `python3` from PATH.
 */
export async function wrapperInterpreter(ansiblePlaybook: string): Promise<string> {
  const script = ansiblePlaybook.includes('/') ? ansiblePlaybook : await onPath(ansiblePlaybook);
  const firstLine = script === undefined ? '' : await readFirstLine(script);
  const named = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(firstLine);
  const program = named?.[1] && path.basename(named[1]) === 'env' ? named[2] : named?.[1];
  return program && /^python3(\.\d+)?$/.test(path.basename(program)) ? program : 'python3';
}

async function onPath(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, command);
    if (await fs.access(candidate, fsConstants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}

async function readFirstLine(file: string): Promise<string> {
  const handle = await fs.open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256), 0, 256, 0);
    return buffer.subarray(0, bytesRead).toString('utf8').split('\n')[0] ?? '';
  } finally {
    await handle.close();
  }
}

function spawnPlaybook(
  python: string,
  args: string[],
  varsYaml: string,
  request: PlaybookRequest,
  hooks: RunHooks,
  { tailLines, cwd, gpuMemoryByPid, scrub }: SpawnOptions,
): Promise<PlaybookRun> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const availableAtStartMb = availableMemoryMb();
    const child = spawn(python, args, {
      cwd,
      detached: true, // its own process group, so cancellation kills every fork
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: playbookEnvironment(process.env),
    });
    // A wrapper that exits before reading its vars has failed, and its exit code says so: the
    // broken pipe adds nothing, and unhandled it would take the worker down.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(varsYaml);
    const fold = new AnsibleEventFold(scrub);
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
      const { pids, rssBytes } = sampleProcessTree(pgid);
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
      if (line.trim()) keep([scrub(`stderr: ${line}`)]);
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
    child.once('close', (code, closeSignal) => {
      clearInterval(sampler);
      clearTimeout(timer);
      hooks.signal.removeEventListener('abort', onAbort);
      const wallTimeS = Number(process.hrtime.bigint() - started) / 1e9;
      const report = parseUsage(usage);
      const keyMessages = [...fold.keyMessages];
      if (code !== 0 && keyMessages.length === 0 && !stopReason) {
        // Failed before any task ran (syntax error, missing role...): ansible explains on stderr.
        keyMessages.push(...tail.filter((l) => l.startsWith('stderr: ')).slice(-5).map((l) => l.slice(8)));
      }
      const result = stopReason ?? (code === 0 ? 'succeeded' : 'failed');
      // A second either side: the kernel log's clock and ours agree only to milliseconds.
      const kernelOom = result === 'failed' ? oomReportsBetween(started / 1000n - KERNEL_LOG_MARGIN_US, kernelClockUs() + KERNEL_LOG_MARGIN_US) : null;
      resolve({
        result,
        exitCode: code,
        counts: fold.counts,
        keyMessages,
        steps: fold.steps,
        outputTail: tail,
        resources: {
          cpuTimeS: round(report.cpuTimeS, 3),
          wallTimeS: round(wallTimeS, 3),
          peakMemoryMb: round(peakRss / 1024 / 1024, 1),
          gpuVramMb: peakVramMb,
          agentLoadPctAtDispatch: null,
        },
        evidence: {
          // Killed before it could report: the close event's signal is the wrapper's own.
          playbookSignal: report.signal ?? closeSignal ?? null,
          failedResults: [...fold.failedResults],
          availableMemoryMbAtStart: availableAtStartMb,
          ...(kernelOom?.length ? { kernelOom } : {}),
        },
      });
    });
  });
}

function lines(stream: Readable): readline.Interface {
  return readline.createInterface({ input: stream, crlfDelay: Infinity });
}

function parseUsage(text: string): { cpuTimeS: number; signal?: string } {
  try {
    const parsed = JSON.parse(text) as { cpuTimeS: number; signal?: string | null };
    return { cpuTimeS: Number(parsed.cpuTimeS) || 0, signal: typeof parsed.signal === 'string' ? parsed.signal : undefined };
  } catch {
    return { cpuTimeS: 0 }; // killed before it could report
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

/** A comma-separated host list may name only this machine; any other inventory is a file in the folder. */
async function resolveInventory(root: string, inventory: string): Promise<string> {
  if (!inventory.includes(',')) return resolveInside(root, inventory, 'inventory');
  if (!isLocalHostList(inventory)) {
    throw new PlaybookNotFoundError(`inventory ${inventory} names a host other than localhost; other hosts come from an inventory in ${root}`);
  }
  return inventory;
}

function assertNoReservedVars(request: PlaybookRequest): void {
  const issues = (['extraVars', 'secretVars'] as const).flatMap((field) =>
    Object.keys(request[field])
      .filter(isReservedVarName)
      .map((name) => ({ field: `${field}.${name}`, message: RESERVED_VAR_MESSAGE })),
  );
  if (issues.length > 0) throw new ValidationError(issues);
}

/**
 * The vars as YAML with every string, keys included, at any depth, tagged `!unsafe`: Ansible never
 * templates them, so `{{ lookup('pipe', ...) }}` in a value reaches the playbook as text. Flow
 * style with ASCII-only double-quoted scalars leaves nothing for YAML to read another way.
 */
function unsafeVarsYaml(value: Json): string {
  if (typeof value === 'string') return `!unsafe ${yamlQuoted(value)}`;
  if (typeof value === 'number') return yamlNumber(value);
  if (typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return `[${value.map(unsafeVarsYaml).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([key, item]) => `${unsafeVarsYaml(key)}: ${unsafeVarsYaml(item)}`)
    .join(', ')}}`;
}

function yamlQuoted(text: string): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '"' || char === '\\') out += `\\${char}`;
    else if (code >= 0x20 && code <= 0x7e) out += char;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `"${out}"`;
}

/** YAML 1.1 reads `1e-7` as a string and JSON numbers may be written so: say which a number is. */
function yamlNumber(value: number): string {
  return Number.isInteger(value) ? BigInt(value).toString() : `!!float ${String(value)}`;
}
