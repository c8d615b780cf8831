import fs from 'node:fs';

/** The last lines of a child's log file, for an error that says why the child would not start. */
export function tailOf(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
