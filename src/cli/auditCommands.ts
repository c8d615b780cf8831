import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { AuditPage, AuditRow, FailureSummary } from '../../contracts';
import { cliApiClient } from './apiTarget';
import { ConfigError, loadConfig, type Config } from '../config';
import { appLoginUser, loginUrl } from '../db/appLogin';
import { createDb, type Db } from '../db/pool';
import {
  createCheckpoint,
  generateCheckpointKeys,
  parseVerifierKey,
  readCheckpointFile,
  readSignerKeyFile,
  writeCheckpointFile,
  writeSignerKeyFile,
  type VerifierKey,
} from '../ledger/checkpoint';
import { verifyAgainstCheckpoint, verifyChain, type ChainVerification, type CheckpointVerification } from '../ledger/verify';

/**
 * The database the audit commands read: DATABASE_URL, else the embedded one `opsledger dev` runs,
 * as the application's own login (it reads like the API does, and can rewrite nothing).
 */
function auditDatabaseUrl(config: Config): string {
  if (config.DATABASE_URL) return config.DATABASE_URL;
  const password = fs.readFileSync(path.join(config.OPSLEDGER_DATA_DIR, 'db-app-password'), 'utf8').trim();
  return loginUrl(`postgresql://127.0.0.1:${config.OPSLEDGER_EMBEDDED_PG_PORT}/opsledger`, { user: appLoginUser('opsledger'), password });
}

/** Checking takes only the public half, so an auditor can hold it without being able to sign. */
function verifierKey(option: string | undefined, config: Config): VerifierKey {
  const text = option ?? config.OPSLEDGER_CHECKPOINT_VERIFIER_KEY;
  if (!text) {
    throw new ConfigError(['OPSLEDGER_CHECKPOINT_VERIFIER_KEY: required to check a checkpoint, or --key (`opsledger audit keygen` printed it)']);
  }
  return parseVerifierKey(text);
}

async function withDb<T>(config: Config, work: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb({ connectionString: auditDatabaseUrl(config), role: config.OPSLEDGER_DB_ROLE, max: 1 });
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

const FILTERS = ['status', 'service', 'intent', 'action', 'failureClass', 'agent', 'taskId', 'changed', 'from', 'to'] as const;
const FAILURE_FILTERS = ['failureClass', 'service', 'agent', 'action', 'from', 'to'] as const;
const SUMMARY_PARAMS = ['service', 'agent', 'action', 'from', 'to', 'by', 'bucket'] as const;
const DURATION_PARAMS = ['service', 'action', 'from', 'to'] as const;

type Options = Record<string, string | boolean | undefined>;

/**
 * `opsledger audit [filters]` and its `failures` and `durations` read through the API (same
 * filters, same validation, same token rules); `verify` and `checkpoint` go straight to the ledger
 * database.
 */
export function registerLedgerCommands(audit: Command): void {
  // `audit failures --from 7d` is the subcommand's --from: audit's own options only come before a subcommand.
  audit.enablePositionalOptions();
  for (const name of FILTERS) audit.option(`--${kebab(name)} <value>`, `filter by ${name}`);
  pagingOptions(audit).action(async (opts: Options) => {
    const rows = await readPages(cliApiClient().audit, queryOf(opts, FILTERS), opts);
    if (opts.json) return console.log(JSON.stringify(rows, null, 2));
    if (rows.length === 0) return console.log('no ledger row matches');
    console.table(
      rows.map((r) => ({
        time: r.createdAt,
        task: r.taskId,
        seq: r.seq,
        status: r.status,
        intents: r.intents.join(' '),
        agent: r.agent ?? '',
        actor: r.actor,
        failure: r.failureClass ?? '',
      })),
    );
  });

  const failures = audit
    .command('failures')
    .description('Failures (failed, timed_out, cancelled), newest first, with their evidence; --summary counts them by class.');
  for (const name of FAILURE_FILTERS) failures.option(`--${kebab(name)} <value>`, `filter by ${name}`);
  pagingOptions(failures)
    .option('--summary', 'count the failures by class instead of listing them')
    .option('--by <grouping>', 'with the summary: one line per service, agent or action')
    .option('--bucket <step>', 'with the summary: one line per UTC hour or day of the range')
    .action(async (opts: Options) => {
      const api = cliApiClient();
      if (opts.summary || opts.by || opts.bucket) {
        const summary = await api.failureSummary(queryOf(opts, SUMMARY_PARAMS));
        if (opts.json) return console.log(JSON.stringify(summary, null, 2));
        return printFailureSummary(summary);
      }
      const rows = await readPages(api.failures, queryOf(opts, FAILURE_FILTERS), opts);
      if (opts.json) return console.log(JSON.stringify(rows, null, 2));
      if (rows.length === 0) return console.log('no failure matches');
      console.table(
        rows.map((r) => ({
          time: r.createdAt,
          task: r.taskId,
          status: r.status,
          class: r.failureClass ?? '',
          intents: r.intents.join(' '),
          agent: r.agent ?? '',
          evidence: failureEvidence(r),
        })),
      );
    });

  const durations = audit
    .command('durations')
    .description('Estimated against actual duration per intent, over the runs that ended in a range (default: the past 7 days).');
  for (const name of DURATION_PARAMS) durations.option(`--${kebab(name)} <value>`, `narrow to this ${name}`);
  durations.option('--json', 'machine-readable output (one JSON document)').action(async (opts: Options) => {
    const report = await cliApiClient().durations(queryOf(opts, DURATION_PARAMS));
    if (opts.json) return console.log(JSON.stringify(report, null, 2));
    console.log(`runs that ended from ${report.from} to ${report.to}`);
    if (report.intents.length === 0) return console.log('no run ended in the range');
    console.table(
      report.intents.map((i) => ({
        intent: i.intent,
        runs: i.runs,
        estimated: i.estimated,
        'mean actual s': i.meanActualS,
        'mean estimate s': i.meanEstimatedS ?? '',
        'mean |error| s': i.meanAbsoluteErrorS ?? '',
        'actual/estimate': i.actualOverEstimate ?? '',
        longer: i.longerThanEstimated,
        shorter: i.shorterThanEstimated,
      })),
    );
  });

  audit
    .command('verify')
    .description('Check the whole hash chain; with --checkpoint, also that the rows up to an earlier checkpoint are unchanged.')
    .option('--checkpoint <file>', 'a checkpoint written by `opsledger audit checkpoint`')
    .option('--key <verifier key>', 'the verifier key that signed it (default OPSLEDGER_CHECKPOINT_VERIFIER_KEY)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { checkpoint?: string; key?: string; json?: boolean }) => {
      const config = loadConfig();
      const checkpoint = opts.checkpoint ? await readCheckpointFile(opts.checkpoint, verifierKey(opts.key, config)) : undefined;
      const result: ChainVerification | CheckpointVerification = await withDb(config, (db) =>
        checkpoint ? verifyAgainstCheckpoint(db, checkpoint) : verifyChain(db),
      );
      if (opts.json) console.log(JSON.stringify(result, null, 2));
      else printVerification(result);
      if (!result.ok) process.exitCode = 1;
    });

  audit
    .command('keygen')
    .description('Make the Ed25519 key pair of checkpoints: the signer key goes to a new owner-only file, the verifier key is printed.')
    .requiredOption('--name <name>', "the key's name, also each checkpoint's origin line, e.g. ops.example.com/ledger")
    .requiredOption('--out <file>', 'where to create the signer key file (keep it off the database host)')
    .action(async (opts: { name: string; out: string }) => {
      const keys = generateCheckpointKeys(opts.name);
      await writeSignerKeyFile(opts.out, keys.signerKey);
      console.error(`signer key written to ${opts.out}; the verifier key, for auditors (OPSLEDGER_CHECKPOINT_VERIFIER_KEY):`);
      console.log(keys.verifierKey);
    });

  audit
    .command('checkpoint')
    .description('Write the signed head of the intact chain (sequence, hash, time) to a file outside the database.')
    .requiredOption('--out <file>', 'where to write the checkpoint (keep it away from the database host)')
    .requiredOption('--key <file>', 'the signer key file `opsledger audit keygen` wrote')
    .action(async (opts: { out: string; key: string }) => {
      const config = loadConfig();
      const signer = await readSignerKeyFile(opts.key);
      const checkpoint = await withDb(config, (db) => createCheckpoint(db, signer));
      await writeCheckpointFile(opts.out, checkpoint);
      console.log(
        `checkpoint written to ${opts.out}: chain_seq ${checkpoint.chainSeq} row_hash ${checkpoint.rowHash} (${checkpoint.rows} rows, taken ${checkpoint.takenAt}, signed as ${checkpoint.origin})`,
      );
    });
}

function printVerification(result: ChainVerification | CheckpointVerification): void {
  if (result.firstBroken) {
    const b = result.firstBroken;
    console.log(`ledger BROKEN at chain_seq ${b.chainSeq} (task ${b.taskId} seq ${b.seq}): ${b.reason}`);
  } else {
    const head = result.head ? `; head chain_seq ${result.head.chainSeq} ${result.head.rowHash}` : '';
    console.log(`ledger intact: ${result.rows} rows checked in ${Math.round(result.ms)} ms${head}`);
  }
  if ('checkpoint' in result) {
    console.log(result.checkpoint.ok ? 'checkpoint matches' : `checkpoint FAILED: ${result.checkpoint.reason}`);
  }
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function pagingOptions(command: Command): Command {
  return command
    .option('--limit <n>', 'rows per page (1-500)', '50')
    .option('--all', 'follow the cursor to the last page')
    .option('--json', 'machine-readable output (one JSON document)');
}

function queryOf(opts: Options, names: readonly string[]): URLSearchParams {
  const query = new URLSearchParams();
  for (const name of names) {
    const value = opts[name];
    if (typeof value === 'string') query.set(name, value);
  }
  return query;
}

/** The first page, or with --all every page, following the cursor. */
async function readPages(read: (query: URLSearchParams) => Promise<AuditPage>, query: URLSearchParams, opts: Options): Promise<AuditRow[]> {
  query.set('limit', String(opts.limit));
  const rows: AuditRow[] = [];
  for (let cursor: string | null = null; ; ) {
    if (cursor) query.set('cursor', cursor);
    const page = await read(query);
    rows.push(...page.rows);
    cursor = page.nextCursor;
    if (!opts.all || !cursor) return rows;
  }
}

/** One line per group or step: the total and each class. */
function printFailureSummary(summary: FailureSummary): void {
  console.log(`failures from ${summary.from} to ${summary.to}: ${summary.total}`);
  const line = (label: Record<string, string>, counts: { total: number; byClass: FailureSummary['byClass'] }) => ({
    ...label,
    total: counts.total,
    ...counts.byClass,
  });
  if (summary.groups) {
    const by = summary.by ?? 'group';
    console.table(summary.groups.map((g) => line({ [by]: g.key ?? '(none)' }, g)));
  }
  if (summary.series) console.table(summary.series.map((b) => line({ from: b.from }, b)));
  if (!summary.groups && !summary.series) console.table([line({}, summary)]);
}

/** What a failure row says about why, in one line: its resource evidence, else its message. */
export function failureEvidence(row: AuditRow): string {
  const failure = asObject(row.failure);
  const state = asObject(failure?.resourceState);
  if (state) {
    const decided = Array.isArray(state.decidedBy) ? state.decidedBy.join('+') : '';
    const messages = Array.isArray(state.messages) ? state.messages.map(asObject) : [];
    const first = messages[0];
    const peak = `peak ${String(state.peakMemoryMb)} MB of ${state.requestedMemoryMb === null ? 'no stated' : `${String(state.requestedMemoryMb)} MB`} asked`;
    const detail = first ? `${String(first.rule)}: ${oneLine(String(first.text))}` : peak;
    return clip(`${decided || 'evidence'}: ${detail}`);
  }
  const message = failure?.message;
  return typeof message === 'string' ? clip(oneLine(message)) : '';
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 99)}…` : text;
}
