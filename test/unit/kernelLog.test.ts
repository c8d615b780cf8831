import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { availableMemoryMb, oomReportsBetween, parseRecords } from '../../activities/kernelLog';

const CAPTURED = path.join(__dirname, '..', 'fixtures', 'kernel', 'memcg-oom.kmsg');
// The captured OOM kill's records are stamped 2,500,387,358 to 2,500,387,848 microseconds after boot.
const DURING = [2_500_000_000n, 2_501_000_000n] as const;

describe('the kernel log, as captured from a real memory-cgroup OOM kill', () => {
  test('the OOM killer\'s summary and kill lines are found inside the window, and nothing else', () => {
    expect(oomReportsBetween(...DURING, CAPTURED)).toEqual([
      expect.stringMatching(/^oom-kill:constraint=CONSTRAINT_MEMCG,.*task=python3,pid=8482,uid=0$/),
      expect.stringMatching(/^Memory cgroup out of memory: Killed process 8482 \(python3\) total-vm:221368kB/),
    ]);
  });

  test('a window before or after the kill finds no report', () => {
    expect(oomReportsBetween(0n, 2_500_000_000n, CAPTURED)).toEqual([]);
    expect(oomReportsBetween(2_501_000_000n, 2_600_000_000n, CAPTURED)).toEqual([]);
  });

  test('a log that cannot be read answers null: nothing is decided from it', () => {
    expect(oomReportsBetween(...DURING, path.join(os.tmpdir(), 'no-such-kmsg'))).toBeNull();
  });

  test('records are parsed by their header, one a line, continuation lines skipped', () => {
    const records = parseRecords(fs.readFileSync(CAPTURED, 'utf8'));
    expect(records).toHaveLength(80);
    expect(records[0]).toEqual({ us: 2_500_387_358n, message: expect.stringContaining('python3 invoked oom-killer') });
    expect(parseRecords('6,9,12,-;first\n SUBSYSTEM=memory\n DEVICE=+x\n4,10,13,c;second\n')).toEqual([
      { us: 12n, message: 'first' },
      { us: 13n, message: 'second' },
    ]);
  });
});

describe('available memory', () => {
  test('is MemAvailable of /proc/meminfo in MB', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meminfo-'));
    fs.writeFileSync(path.join(dir, 'meminfo'), 'MemTotal:       24576000 kB\nMemFree:         1024000 kB\nMemAvailable:    2097152 kB\n');
    fs.writeFileSync(path.join(dir, 'old'), 'MemTotal:       24576000 kB\nMemFree:         1024000 kB\n');
    expect(availableMemoryMb(path.join(dir, 'meminfo'))).toBe(2048);
    // Kernels before 3.14 have no MemAvailable: no figure rather than a wrong one.
    expect(availableMemoryMb(path.join(dir, 'old'))).toBeNull();
    expect(availableMemoryMb(path.join(dir, 'missing'))).toBeNull();
    fs.rmSync(dir, { recursive: true });
  });

  test('on this Linux host it is a positive number', () => {
    expect(availableMemoryMb()).toBeGreaterThan(0);
  });
});
