import http from 'node:http';
import type net from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { createAdmissionRepository } from '../../src/admission/repository';
import { createApp } from '../../src/api/app';
import { hashToken } from '../../src/api/auth';
import { loadConfig, taskRuntimeOf } from '../../src/config';
import { createDb } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';

/**
 * The API the export bench measures, in a process of its own so that its resident memory is the
 * API's alone: `node dist/bench/export/apiProcess.js <database url> <viewer token>`. It prints
 * its port as one JSON line. The export never calls Temporal, so the client is a lazy one that
 * never connects.
 */
async function main(): Promise<void> {
  const [url, token] = process.argv.slice(2);
  if (!url || !token) throw new Error('usage: apiProcess.js <database url> <viewer token>');
  const defaults = loadConfig({});
  const db = createDb({ connectionString: url, role: defaults.OPSLEDGER_DB_ROLE });
  const app = createApp({
    db,
    ledger: createLedgerRepository(db),
    temporal: new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) }),
    admission: createAdmissionRepository(db, { agentMaxAgeS: defaults.OPSLEDGER_AGENT_MAX_AGE_S, loadThresholdPct: defaults.OPSLEDGER_LOAD_THRESHOLD_PCT }),
    runtime: taskRuntimeOf(defaults),
    playbooksDir: defaults.OPSLEDGER_PLAYBOOKS_DIR,
    tokens: [{ name: 'bench-viewer', role: 'viewer', sha256: hashToken(token) }],
    cursorSecret: 'export-bench-cursor-secret',
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  console.log(JSON.stringify({ port: (server.address() as net.AddressInfo).port }));
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
