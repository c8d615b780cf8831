import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * PostgreSQL refuses to run as root, so a root user's embedded cluster runs as this system account,
 * and everything that server reads must lie where the account can reach it. A root user's checkout
 * is often below a 0700 folder (root's home), which no other account can enter.
 */
const SERVER_ACCOUNT_NAME = 'postgres';

/** Root-owned and world-searchable: what a root user's embedded server needs outside the checkout. */
export const SYSTEM_DIR = '/var/lib/opsledger';

export type Account = { uid: number; gid: number };

/** Who runs the embedded server: ourselves (undefined), or, when we are root, the server account. */
export function serverAccount(): Account | undefined {
  if (os.userInfo().uid !== 0) return undefined;
  return findAccount(SERVER_ACCOUNT_NAME) ?? createSystemAccount(SERVER_ACCOUNT_NAME);
}

/** A cluster keeps the owner it was made with: PostgreSQL runs only as its data folder's owner. */
export function ownerOf(dir: string): Account {
  const { uid, gid } = fs.statSync(dir);
  return { uid, gid };
}

/** Whether `account` can enter `dir`, which needs search permission on every folder above it. */
export function canEnter(account: Account, dir: string): boolean {
  return spawnSync('test', ['-x', dir], { ...account, cwd: '/', stdio: 'ignore' }).status === 0;
}

function findAccount(name: string): Account | undefined {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function createSystemAccount(name: string): Account {
  execFileSync(
    'useradd',
    ['--system', '--user-group', '--no-create-home', '--home-dir', path.join(SYSTEM_DIR, 'home'), '--shell', '/usr/sbin/nologin', name],
    { stdio: 'pipe' },
  );
  const account = findAccount(name);
  if (!account) throw new Error(`useradd made no account named ${name}`);
  return account;
}
