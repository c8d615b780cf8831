import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logger } from '../logger';
import { projectRoot } from '../paths';

/** Newer CLI tags carry a replace directive in go.mod and cannot be `go install`ed. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const INSTALL_FALLBACK_VERSIONS = ['v1.5.1', 'v1.4.1', 'v1.3.0'];

export const projectToolsBin = path.join(projectRoot, '.tools', 'bin');

export class TemporalCliUnavailable extends Error {
  override name = 'TemporalCliUnavailable';
}

/**
 * Finds the `temporal` CLI: $TEMPORAL_CLI, then PATH, then the project's .tools/bin, then Go's
 * own bin folder; when none has it, builds it with `go install` into .tools/bin (minutes the
 * first time, reused later).
 */
export async function ensureTemporalCli(explicit?: string): Promise<string> {
  if (explicit) {
    if (!isExecutable(explicit)) throw new TemporalCliUnavailable(`TEMPORAL_CLI=${explicit} is not an executable file`);
    return explicit;
  }
  const found =
    findOnPath('temporal') ??
    existingExecutable(path.join(projectToolsBin, 'temporal')) ??
    existingExecutable(path.join(process.env.GOPATH ?? path.join(os.homedir(), 'go'), 'bin', 'temporal'));
  if (found) return found;
  return installWithGo();
}

async function installWithGo(): Promise<string> {
  const go = findOnPath('go') ?? existingExecutable('/usr/local/go/bin/go');
  if (!go) {
    throw new TemporalCliUnavailable(
      'The Temporal CLI was not found (TEMPORAL_CLI, PATH, .tools/bin) and Go is not installed to build it.\n' +
        `Install Go 1.22+ and run: GOBIN=${projectToolsBin} go install ${TEMPORAL_CLI_MODULE}@v1.5.1\n` +
        'or put a `temporal` binary on PATH, or set TEMPORAL_CLI to its path.',
    );
  }
  fs.mkdirSync(projectToolsBin, { recursive: true });
  const failures: string[] = [];
  for (const version of INSTALL_FALLBACK_VERSIONS) {
    logger.info(
      { version, into: projectToolsBin },
      'building the Temporal CLI with `go install` (first time only; this takes a few minutes)',
    );
    const started = Date.now();
    const { code, output } = await run(go, ['install', `${TEMPORAL_CLI_MODULE}@${version}`], {
      ...process.env,
      GOBIN: projectToolsBin,
    });
    const binary = existingExecutable(path.join(projectToolsBin, 'temporal'));
    if (code === 0 && binary) {
      logger.info({ version, seconds: Math.round((Date.now() - started) / 1000) }, 'Temporal CLI built');
      return binary;
    }
    failures.push(`${version}: ${output.trim().split('\n').slice(-5).join('\n')}`);
  }
  throw new TemporalCliUnavailable(`go install of the Temporal CLI failed:\n${failures.join('\n')}`);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
