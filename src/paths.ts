import fs from 'node:fs';
import path from 'node:path';

/** The folder holding package.json, sql/ and playbooks/, whether running from src/ or dist/src/. */
export const projectRoot = findUp(__dirname);

function findUp(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'sql'))) {
      return dir;
    }
    if (path.dirname(dir) === dir) throw new Error(`opsledger project root not found above ${start}`);
  }
}

export const sqlDir = path.join(projectRoot, 'sql');
