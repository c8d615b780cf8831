import fs from 'node:fs';

/**
 * What the agent's kernel says about memory: how much it has available, and the OOM killer's
 * reports in its log (/dev/kmsg, readable by root or where dmesg_restrict is 0). Linux only;
 * elsewhere, or without the rights, both answer null and nothing is decided from them.
 */

/** MemAvailable of /proc/meminfo in MB: what the agent can give a new process without swapping. */
export function availableMemoryMb(meminfo = '/proc/meminfo'): number | null {
  try {
    const match = /^MemAvailable:\s+(\d+) kB$/m.exec(fs.readFileSync(meminfo, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/**
 * The kernel log's clock, microseconds since boot, as /dev/kmsg stamps its records. The log's
 * clock is the scheduler's, not CLOCK_MONOTONIC, but they agree to within milliseconds; callers
 * widen their window by a second.
 */
export function kernelClockUs(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** The OOM killer's lines: the kill itself and its one-line summary (constraint, cgroup, task, pid). */
const OOM_KILL = /Killed process \d+ \(|^oom-kill:/;

/**
 * The OOM killer's reports logged in [fromUs, toUs] of the kernel clock, oldest first; null when
 * the log cannot be read. Reads the whole ring buffer (a few hundred KB at most), so callers ask
 * only after a run that failed.
 */
export function oomReportsBetween(fromUs: bigint, toUs: bigint, kmsg = '/dev/kmsg'): string[] | null {
  let fd: number;
  try {
    fd = fs.openSync(kmsg, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const reports: string[] = [];
  const buffer = Buffer.alloc(8192);
  try {
    for (;;) {
      let n: number;
      try {
        // Each read returns one record: "priority,sequence,microseconds,flags;message".
        n = fs.readSync(fd, buffer, 0, buffer.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') break; // the end of the log
        if (code === 'EPIPE') continue; // records overwritten while reading: the next one follows
        return reports.length > 0 ? reports : null;
      }
      if (n === 0) break;
      for (const record of parseRecords(buffer.toString('utf8', 0, n))) {
        if (record.us >= fromUs && record.us <= toUs && OOM_KILL.test(record.message)) reports.push(record.message);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return reports;
}

/**
 * Records of the kernel log's format, "priority,sequence,microseconds,flags;message" a line, each
 * followed by its continuation lines (" KEY=value", skipped): what one read of /dev/kmsg returns,
 * or a saved stretch of it.
 */
export function parseRecords(text: string): { us: bigint; message: string }[] {
  const records: { us: bigint; message: string }[] = [];
  for (const line of text.split('\n')) {
    const header = /^\d+,\d+,(\d+),[^;]*;(.*)$/.exec(line);
    if (header) records.push({ us: BigInt(header[1]!), message: header[2]! });
  }
  return records;
}
