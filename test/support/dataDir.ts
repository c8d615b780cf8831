import fs from 'node:fs';
import path from 'node:path';

/**
 * Removes a data folder that an embedded PostgreSQL used. As root, with the folder where the
 * `postgres` account cannot enter (a 0700 temporary folder), the cluster lives in
 * /var/lib/opsledger/clusters and `postgres` links to it: removing the folder alone left 80 MB
 * there for each cluster a test brought up.
 */
export function removeDataDir(dir: string): void {
  const link = path.join(dir, 'postgres');
  if (fs.lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink()) {
    fs.rmSync(fs.readlinkSync(link), { recursive: true, force: true });
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
