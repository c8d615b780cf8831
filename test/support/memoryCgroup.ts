import fs from 'node:fs';
import path from 'node:path';

export type MemoryCgroup = { procs: string; remove: () => void };

/**
 * A memory cgroup of its own with a limit, where this user may make one (root, a writable cgroup
 * v1 memory hierarchy or a v2 one with the memory controller); undefined elsewhere. Whatever
 * joins it and outgrows the limit is killed by the kernel's OOM killer, which logs the kill.
 */
export function makeMemoryCgroup(name: string, limitMb: number): MemoryCgroup | undefined {
  const bytes = String(limitMb * 1024 * 1024);
  const candidates: [string, string][] = [
    ['/sys/fs/cgroup/memory', 'memory.limit_in_bytes'],
    ['/sys/fs/cgroup', 'memory.max'],
  ];
  for (const [root, limitFile] of candidates) {
    const dir = path.join(root, name);
    try {
      fs.mkdirSync(dir);
    } catch {
      continue;
    }
    try {
      fs.writeFileSync(path.join(dir, limitFile), bytes);
      return { procs: path.join(dir, 'cgroup.procs'), remove: () => fs.rmdirSync(dir) };
    } catch {
      fs.rmdirSync(dir);
    }
  }
  return undefined;
}
