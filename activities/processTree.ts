import fs from 'node:fs';

const PAGE_SIZE = 4096;

/**
 * The live processes of the tree under `root` and their resident memory in bytes (Linux /proc,
 * each thread's `children`). The playbook wrapper is a child subreaper, so a fork whose parent
 * ended stays in its tree. Reads a few files per process of the tree instead of one per process
 * of the machine: sampled four times a second for every running playbook, a scan of all of /proc
 * was the largest part of the worker's own CPU a run.
 */
export function sampleProcessTree(root: number): { pids: number[]; rssBytes: number } {
  const sample = { pids: [] as number[], rssBytes: 0 };
  const pending = [root];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    const rssPages = residentPages(pid);
    if (rssPages === undefined) continue; // exited since its parent listed it
    sample.pids.push(pid);
    sample.rssBytes += rssPages * PAGE_SIZE;
    pending.push(...childrenOf(pid));
  }
  return sample;
}

function residentPages(pid: number): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name is in parentheses and may contain spaces: parse after the last ')', where
  // fields[0] is the state (field 3) and rss is field 24.
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[21]);
}

function childrenOf(pid: number): number[] {
  let threads: string[];
  try {
    threads = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return threads.flatMap((tid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
    } catch {
      return []; // the thread ended
    }
  });
}

/** Kills a whole process group: SIGTERM first, SIGKILL if it is still there after `graceMs`. */
export function killProcessGroup(pgid: number, graceMs = 5000): void {
  const send = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pgid, signal);
      return true;
    } catch {
      return false; // already gone
    }
  };
  if (send('SIGTERM')) setTimeout(() => send('SIGKILL'), graceMs).unref();
}
