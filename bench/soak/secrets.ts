import fs from 'node:fs';
import path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Client } from 'pg';
import type { LeakScan } from './canary';
import type { SoakCluster } from './cluster';
import { forEachAtMost, type PartResult } from './part';

const HISTORIES_AT_ONCE = 8;

/**
 * After the run, the secret every task carried must be nowhere: not in a ledger row, not in a log
 * of the stack's processes, not in a workflow's history. The API's answers were scanned as they
 * came (./api.ts); this adds the rest and reports what was scanned.
 */
export async function scanForSecret(cluster: SoakCluster, scan: LeakScan, taskIds: string[]): Promise<PartResult> {
  await scanLedger(cluster.ownerUrl, scan);
  for (const logFile of cluster.logFiles) scan.text('log', path.basename(logFile), fs.readFileSync(logFile, 'utf8'));
  await scanHistories(cluster.temporalAddress, taskIds, scan);
  return { lines: [`\n  secret canary: ${scanSummary(scan)}`], violations: scanViolations(scan), taskIds: [] };
}

const PLACES: [kind: string, plural: string][] = [
  ['ledger row', 'ledger rows'],
  ['log', 'logs'],
  ['API response', 'API responses'],
  ['workflow history', 'workflow histories'],
];

function scanSummary(scan: LeakScan): string {
  const counts = scan.counts();
  const scanned = PLACES.map(([kind, plural]) => `${counts.get(kind)?.scanned ?? 0} ${plural}`).join(', ');
  const histories = counts.get('workflow history') ?? { scanned: 0, witnessed: 0 };
  return `scanned ${scanned}; found in ${scan.leaks().length}; its hash (in every task's extraVars) seen in ${histories.witnessed} of the histories`;
}

/** A leak anywhere; and a history without the hash, which means the scan could not read its payloads. */
function scanViolations(scan: LeakScan): string[] {
  const violations = scan.leaks().slice(0, 10).map((where) => `the secret shows in the ${where}`);
  const histories = scan.counts().get('workflow history');
  if (histories && histories.witnessed < histories.scanned) {
    violations.push(`${histories.scanned - histories.witnessed} workflow histories did not show the extraVars the scan must see`);
  }
  return violations;
}

/** Every row of the ledger, each as PostgreSQL writes it out as text. */
async function scanLedger(ownerUrl: string, scan: LeakScan): Promise<void> {
  const owner = new Client({ connectionString: ownerUrl });
  await owner.connect();
  try {
    const { rows } = await owner.query<{ id: string; row: string }>('SELECT t.id::text AS id, t::text AS row FROM tasks t');
    for (const { id, row } of rows) scan.text('ledger row', id, row);
  } finally {
    await owner.end();
  }
}

async function scanHistories(address: string, workflowIds: string[], scan: LeakScan): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const client = new TemporalClient({ connection, namespace: 'default' });
    await forEachAtMost(HISTORIES_AT_ONCE, workflowIds, async (id) => {
      // Its wire form: every payload's bytes as they are, the memo and search attributes included.
      const history = temporal.api.history.v1.History.encode(await client.workflow.getHandle(id).fetchHistory()).finish();
      scan.text('workflow history', id, Buffer.from(history).toString('latin1'));
    });
  } finally {
    await connection.close();
  }
}
