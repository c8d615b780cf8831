import path from 'node:path';

/** Where the recorded task workflow histories live, one JSON file (Temporal's own format) each. */
export const HISTORIES_DIR = path.join(__dirname, '..', 'fixtures', 'histories');
