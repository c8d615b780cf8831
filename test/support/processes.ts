import fs from 'node:fs';

/** Processes whose command line mentions `needle`, e.g. the playbook's `sleep`. */
export function pidsRunning(needle: string): number[] {
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => commandLineOf(p).includes(needle))
    .map(Number);
}

/** A process's command line, its arguments joined by spaces, or '' once it is gone. */
export function commandLineOf(pid: string | number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}
