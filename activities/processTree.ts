import fs from 'node:fs';

const PAGE_SIZE = 4096;

/** The live processes of a process group and their resident memory in bytes (Linux /proc). */
export function sampleProcessGroup(pgid: number): { pids: number[]; rssBytes: number } {
  const sample = { pids: [] as number[], rssBytes: 0 };
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return sample;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry);
    if (stat && stat.pgrp === pgid) {
      sample.pids.push(Number(entry));
      sample.rssBytes += stat.rssPages * PAGE_SIZE;
    }
  }
  return sample;
}

function readStat(pid: string): { pgrp: number; rssPages: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between readdir and read
  }
  // The command name is in parentheses and may contain spaces: parse after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is state (field 3); pgrp is field 5, rss field 24.
  return { pgrp: Number(fields[2]), rssPages: Number(fields[21]) };
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
