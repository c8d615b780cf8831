import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logger } from '../logger';
import { projectRoot } from '../paths';

export const projectToolsBin = path.join(projectRoot, '.tools', 'bin');

/**
 * Where built tools are kept for every checkout of this machine, one folder per tool and
 * version: a fresh clone (CI's) finds the Temporal server built by an earlier one, instead of
 * spending minutes on `go install` again.
 */
export const machineToolsDir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'opsledger', 'go-tools');

/** A build with upgrades gets a folder of its own: one made without them is never taken for it. */
const builtFor = (tool: GoTool, version: string) =>
  path.join(machineToolsDir, [`${tool.name}@${version}`, ...(tool.upgrades ?? []).map((pin) => pin.replaceAll('/', '_'))].join('+'));

/** A binary opsledger runs that `go install` can build: the Temporal CLI, server, sql tool and Web UI server. */
export type GoTool = {
  /** How messages name it. */
  label: string;
  /**
   * Its name in .tools/bin and in the machine's tools folder: the Web UI server's `binary` is
   * `server`, as the Temporal server's is, so the binary's own name cannot tell them apart.
   */
  name: string;
  /** The file `go install` writes into GOBIN. */
  binary: string;
  /** The package `go install` builds. */
  module: string;
  /** Tried in order until one builds. */
  versions: readonly string[];
  /** The variable that names an explicit path, for messages. */
  variable: string;
  /**
   * Whether PATH and Go's own bin folder count: `temporal` is a name only the CLI has, whereas
   * `server` and `sql` could be anything, so those are taken from .tools/bin alone.
   */
  searchPathAndGoBin: boolean;
  /**
   * Modules to build it with at a newer version than its own go.mod asks (`module@version`): a fix
   * its release predates. Then it is built in a throwaway module that requires them, since
   * `go install pkg@version` takes the release's go.mod as it is.
   */
  upgrades?: readonly string[];
};

export class GoToolUnavailable extends Error {
  override name = 'GoToolUnavailable';
}

/**
 * Finds `tool`: `explicit`, then (when the tool allows) PATH, then the project's .tools/bin, then
 * this machine's built tools (any of its versions), then (when it allows) Go's own bin folder; when
 * none has it, builds it with Go (`go install`, or a build with its upgrades) into the machine's
 * tools (minutes the first time, reused by every checkout later).
 */
export async function ensureGoTool(tool: GoTool, explicit?: string): Promise<string> {
  if (explicit) {
    if (!isExecutable(explicit)) throw new GoToolUnavailable(`${tool.variable}=${explicit} is not an executable file`);
    return explicit;
  }
  const goBin = path.join(process.env.GOPATH ?? path.join(os.homedir(), 'go'), 'bin', tool.binary);
  const found =
    (tool.searchPathAndGoBin ? findOnPath(tool.binary) : undefined) ??
    existingExecutable(path.join(projectToolsBin, tool.name)) ??
    tool.versions.map((version) => existingExecutable(path.join(builtFor(tool, version), tool.binary))).find(Boolean) ??
    (tool.searchPathAndGoBin ? existingExecutable(goBin) : undefined);
  return found ?? installWithGo(tool);
}

async function installWithGo(tool: GoTool): Promise<string> {
  const go = findOnPath('go') ?? existingExecutable('/usr/local/go/bin/go');
  if (!go) {
    const searched = tool.searchPathAndGoBin ? `${tool.variable}, PATH, .tools/bin, ${machineToolsDir}, ~/go/bin` : `${tool.variable}, .tools/bin, ${machineToolsDir}`;
    throw new GoToolUnavailable(
      `The ${tool.label} was not found (${searched}) and Go is not installed to build it.\n` +
        (tool.upgrades
          ? `Install Go 1.22+ and run opsledger again, which builds it with ${tool.upgrades.join(', ')}\n`
          : `Install Go 1.22+ and run: GOBIN=${builtFor(tool, tool.versions[0]!)} go install ${tool.module}@${tool.versions[0]}\n`) +
        `or set ${tool.variable} to the path of a ${tool.binary} binary.`,
    );
  }
  const failures: string[] = [];
  for (const version of tool.versions) {
    const into = builtFor(tool, version);
    fs.mkdirSync(into, { recursive: true });
    logger.info({ version, into }, `building the ${tool.label} with Go (first time on this machine; this takes a few minutes)`);
    const started = Date.now();
    const { code, output } = tool.upgrades
      ? await buildWithUpgrades(go, tool, version, into, tool.upgrades)
      : await runCapturingOutput(go, ['install', `${tool.module}@${version}`], { ...process.env, GOBIN: into });
    const binary = existingExecutable(path.join(into, tool.binary));
    if (code === 0 && binary) {
      logger.info({ version, seconds: Math.round((Date.now() - started) / 1000) }, `${tool.label} built`);
      return binary;
    }
    failures.push(`${version}: ${output.trim().split('\n').slice(-5).join('\n')}`);
  }
  throw new GoToolUnavailable(`building the ${tool.label} with Go failed:\n${failures.join('\n')}`);
}

/** `go get` the tool's package and the upgrades into a throwaway module, then `go build` the tool from it. */
async function buildWithUpgrades(go: string, tool: GoTool, version: string, into: string, upgrades: readonly string[]): Promise<{ code: number | null; output: string }> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `opsledger-build-${tool.name}-`));
  try {
    const steps = [
      ['mod', 'init', `opsledger-build/${tool.name}`],
      ['get', `${tool.module}@${version}`, ...upgrades],
      ['build', '-o', path.join(into, tool.binary), tool.module],
    ];
    let last = { code: 0 as number | null, output: '' };
    for (const args of steps) {
      last = await runCapturingOutput(go, args, process.env, work);
      if (last.code !== 0) return last;
    }
    return last;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Runs `cmd` to its exit, keeping the last 20,000 characters of its stdout and stderr for an error message. */
export function runCapturingOutput(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

function findOnPath(name: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const found = result.stdout.trim();
  return result.status === 0 && found ? found : undefined;
}

function existingExecutable(file: string): string | undefined {
  return isExecutable(file) ? file : undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}
