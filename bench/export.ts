import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { ownerClient, startLedgerBenchDatabase } from './ledger/database';
import { loadFixture } from './ledger/fixture';
import { count, Figures, perSecond, seconds } from './ledger/report';

/**
 * `node dist/bench/run.js export`: GET /api/v1/audit/export of the ledger bench's 1,000,000-row
 * fixture, through a real API process, as NDJSON and as CSV. Reports rows/s and the API process's
 * resident memory: idle, at its peak after a 100,000-row export (the baseline), and at its peak
 * after each whole-ledger export. A stream at steady memory has the same peak for 100,000 rows and
 * for 1,000,000; one that held the rows would grow tenfold.
 */

const STATEMENT_TIMEOUT_MS = 180_000;
const TOKEN = 'export-bench-viewer-token';
const BASELINE_ROWS = 100_000;
// Within this much of the 100,000-row peak counts as steady (allocator and buffer noise).
const STEADY_RSS_MARGIN_MB = 64;

type Run = { rows: number; ms: number; bytes: number };

export async function runExportBench(): Promise<boolean> {
  console.log('export bench: creating and migrating a fresh database');
  const database = await startLedgerBenchDatabase();
  let api: ChildProcess | undefined;
  try {
    const owner = await ownerClient(database.url, STATEMENT_TIMEOUT_MS);
    console.log(`  postgres: ${database.postgres}, database ${database.name}\n\n(1) fixture`);
    const fixture = await loadFixture(owner, (line) => console.log(`    ${line}`));
    // The newest 100,000 rows start at the 100,000th newest row's time.
    const [edge] = (
      await owner.query<{ at: string }>(
        `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
           FROM tasks ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT 1`,
        [BASELINE_ROWS - 1],
      )
    ).rows;
    await owner.end();

    const started = await startApi(database.url);
    api = started.child;
    const figures = new Figures();
    const idle = residentMb(api.pid!);
    figures.add({ label: 'API process resident memory, idle', measured: `${idle.rss.toFixed(0)} MB` });
    console.log(`\n(2) exports through the API on port ${started.port}, NDJSON and CSV`);

    const baseline = await exportRows(started.port, `format=ndjson&from=${encodeURIComponent(edge!.at)}`);
    const baselinePeak = residentMb(api.pid!).peak;
    report(figures, `NDJSON, newest ${count(baseline.rows)} rows (baseline)`, baseline, baselinePeak);

    let met = baseline.rows === BASELINE_ROWS;
    for (const format of ['ndjson', 'csv'] as const) {
      const run = await exportRows(started.port, `format=${format}`);
      const peak = residentMb(api.pid!).peak;
      const steady = peak <= baselinePeak + STEADY_RSS_MARGIN_MB;
      const rows = format === 'csv' ? run.rows - 1 : run.rows;
      report(figures, `${format.toUpperCase()}, whole ledger (${count(rows)} rows)`, { ...run, rows }, peak);
      figures.add({
        label: `  peak RSS against the 100,000-row baseline`,
        measured: `${(peak - baselinePeak).toFixed(0)} MB more`,
        target: `<= ${STEADY_RSS_MARGIN_MB} MB more`,
        met: steady,
      });
      met &&= steady && rows === fixture.rows;
    }
    console.log(`\nsummary\n\n${figures.table()}\n\n${met ? 'every target met' : 'some targets missed (FAIL above)'}`);
    return met;
  } finally {
    api?.kill();
    console.log('dropping the bench database');
    await database.close();
  }
}

function report(figures: Figures, label: string, run: Run, peakMb: number): void {
  figures.add({
    label,
    measured: `${perSecond((run.rows / run.ms) * 1000)}, ${seconds(run.ms)}, ${(run.bytes / 1e6).toFixed(0)} MB sent, API peak RSS ${peakMb.toFixed(0)} MB`,
  });
}

async function startApi(url: string): Promise<{ child: ChildProcess; port: number }> {
  const script = path.join(__dirname, 'export', 'apiProcess.js');
  const child = spawn(process.execPath, [script, url, TOKEN], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'error' } });
  const lines = readline.createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the API process exited with ${code} before it listened`)));
  });
  return { child, port };
}

/** Reads the whole export as it streams, counting its lines, as a client saving the file would. */
async function exportRows(port: number, query: string): Promise<Run> {
  const began = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/audit/export?${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (!res.ok || !res.body) throw new Error(`export answered ${res.status}: ${await res.text()}`);
  let rows = 0;
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (const byte of chunk) if (byte === 10) rows += 1;
  }
  return { rows, ms: performance.now() - began, bytes };
}

/** The process's resident memory now and at its peak so far (VmRSS and VmHWM, Linux). */
function residentMb(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}
