import { execFile } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/paths';

export type CliResult = { code: number; stdout: string; stderr: string };

/**
 * The compiled CLI as a user runs it (`npx tsc -p tsconfig.build.json` first), to its exit. Logs
 * at error only: on a busy machine a slow-query warning on stderr is no part of a command's answer,
 * and the tests that want stderr empty mean that nothing went wrong.
 */
export function opsledger(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(projectRoot, 'bin', 'opsledger.js'), ...args],
      { env: { ...process.env, LOG_LEVEL: 'error', ...env }, timeout: timeoutMs },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
