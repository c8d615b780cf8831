import { parseOrThrow } from '../../src/api/problem';
import { createDb, type Db } from '../../src/db/pool';
import { AuditQuery, toAuditFilter, type AuditFilter } from '../../src/ledger/auditFilters';
import { nowMicros } from '../../src/ledger/micros';
import { createAuditQueries } from '../../src/ledger/auditQueries';
import { toAuditRow } from '../../src/ledger/auditRows';
import type { CursorPosition } from '../../src/ledger/cursor';
import { LEDGER_COLUMNS, toLedgerRow } from '../../src/ledger/repository';
import { percentile } from '../support/stats';
import { explainAnalyze, fmtMs, recordingDb, repeatTimed, timed } from './measure';
import { ratio, seconds, type Figures } from './report';

// ---------------------------------------------------------------------------------------------
// "kuma, past week, newest 50" without tasks_created_at_id_idx

const KUMA_WEEK = { service: 'kuma', from: '7d', limit: '50' };
const KUMA_INDEXED_CALLS = 10;
const KUMA_BASELINE_CALLS = 5;

export type KumaBaseline = { indexedMs: number[]; withoutIndexMs: number[]; indexedPlan: string[]; withoutIndexPlan: string[] };

/**
 * The kuma query as GET /audit runs it, timed twice on one owner connection inside one
 * transaction: with every index, then after DROP INDEX tasks_created_at_id_idx, leaving
 * (status, created_at), GIN(services_touched) and the others that cannot serve it. The
 * transaction is rolled back, so the index is back afterwards and nothing was rebuilt. Each side
 * runs as opsledger_app (SET LOCAL ROLE), as the API does. The DDL guard lets index changes on
 * tasks through (sql/003_ledger_guard.sql): an index cannot change what is stored.
 */
export async function kumaWithoutIndex(ownerUrl: string): Promise<KumaBaseline> {
  // One connection, so BEGIN, the DROP and the queries all run in the same transaction.
  const owner = createDb({ connectionString: ownerUrl, max: 1 });
  const recorder = recordingDb(owner);
  const audit = createAuditQueries(recorder.db);
  const query = parseOrThrow(AuditQuery, KUMA_WEEK);
  const kuma = () => audit.list(toAuditFilter(query, nowMicros()), { limit: query.limit });
  const timeSide = async (calls: number) => {
    await kuma(); // warm-up: the first call after the drop also plans without the index
    recorder.take();
    const samples = await repeatTimed(calls, kuma);
    const [statement] = recorder.take();
    if (!statement) throw new Error('the kuma query sent no statement');
    return { samples, plan: await explainAnalyze(owner, statement) };
  };
  try {
    await owner.query('BEGIN');
    await owner.query('SET LOCAL ROLE opsledger_app');
    const indexed = await timeSide(KUMA_INDEXED_CALLS);
    await owner.query('RESET ROLE');
    await owner.query('DROP INDEX tasks_created_at_id_idx');
    await owner.query('SET LOCAL ROLE opsledger_app');
    const without = await timeSide(KUMA_BASELINE_CALLS);
    return { indexedMs: indexed.samples, withoutIndexMs: without.samples, indexedPlan: indexed.plan, withoutIndexPlan: without.plan };
  } finally {
    await owner.query('ROLLBACK').catch(() => undefined);
    await owner.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Page 1,000: keyset cursor against OFFSET

export const PAGE_SIZE = 50;
export const DEEP_PAGE = 1000;
const DEEP_PAGE_CALLS = 10;
const OFFSET_CALLS = 5;

export type DeepPage = {
  label: string;
  walkMs: number;
  keysetMs: number[];
  offsetMs: number[];
  /** The OFFSET page holds exactly the rows the cursor's page 1,000 holds. */
  sameRows: boolean;
};

/**
 * Walks pages 1..999 with the cursor as a client following nextCursor would, then times page
 * 1,000 itself (audit.list after the cursor of page 999) against the same rows fetched with
 * OFFSET 49,950 in the same statement shape. Both run through the application role's pool.
 */
export async function deepPage(appDb: Db, label: string, filter: AuditFilter): Promise<DeepPage> {
  const audit = createAuditQueries(appDb);
  let after: CursorPosition | undefined;
  const walk = await timed(async () => {
    for (let page = 1; page < DEEP_PAGE; page += 1) {
      const { next } = await audit.list(filter, { limit: PAGE_SIZE, ...(after ? { after } : {}) });
      if (!next) throw new Error(`${label}: the ledger ends before page ${page + 1}`);
      after = next;
    }
  });
  const cursor = after;
  if (!cursor) throw new Error(`${label}: no cursor for page ${DEEP_PAGE}`);
  const keysetPage = () => audit.list(filter, { limit: PAGE_SIZE, after: cursor });
  const offsetPage = () => pageByOffset(appDb, filter, (DEEP_PAGE - 1) * PAGE_SIZE);
  const keysetIds = (await keysetPage()).rows.map((r) => r.id);
  const offsetIds = (await offsetPage()).map((r) => r.id);
  return {
    label,
    walkMs: walk.ms,
    keysetMs: await repeatTimed(DEEP_PAGE_CALLS, keysetPage),
    offsetMs: await repeatTimed(OFFSET_CALLS, offsetPage),
    sameRows: keysetIds.length === PAGE_SIZE && keysetIds.join() === offsetIds.join(),
  };
}

/** The statement audit.list sends, with OFFSET in place of the cursor; only the service filter is needed here. */
async function pageByOffset(db: Db, filter: AuditFilter, offset: number) {
  const where = filter.services ? 't.services_touched @> $3::text[]' : 'true';
  const rows = await db.query<Parameters<typeof toLedgerRow>[0]>(
    `SELECT ${LEDGER_COLUMNS}, (extract(epoch FROM t.created_at) * 1000000)::bigint::text AS created_at_micros
       FROM tasks t
      WHERE ${where}
      ORDER BY t.created_at DESC, t.id DESC
      LIMIT $1 OFFSET $2`,
    [PAGE_SIZE + 1, offset, ...(filter.services ? [filter.services] : [])],
  );
  return rows.slice(0, PAGE_SIZE).map((row) => toAuditRow(toLedgerRow(row)));
}

// ---------------------------------------------------------------------------------------------
// Both baselines as figures

const PLAN_LINES = 8;

/** (3) the kuma query without its index and (4) page 1,000, printed and added to the figures. */
export async function baselineFigures(ownerUrl: string, appDb: Db, figures: Figures): Promise<void> {
  console.log(
    `\n(3) "/audit service=kuma, past week, newest 50" with every index against the same query after DROP INDEX ` +
      'tasks_created_at_id_idx, in one transaction that is rolled back',
  );
  const kuma = await kumaWithoutIndex(ownerUrl);
  const indexed = percentile(kuma.indexedMs, 50);
  const without = percentile(kuma.withoutIndexMs, 50);
  printPlan('with every index', kuma.indexedPlan);
  printPlan('without tasks_created_at_id_idx', kuma.withoutIndexPlan);
  figures.add({ label: `kuma week, indexed (median of ${kuma.indexedMs.length})`, measured: fmtMs(indexed) });
  figures.add({ label: `kuma week, without (created_at, id) index (median of ${kuma.withoutIndexMs.length})`, measured: fmtMs(without) });
  figures.add({ label: 'kuma week, without index / indexed', measured: ratio(without / indexed) });

  console.log(`\n(4) page ${DEEP_PAGE} (limit ${PAGE_SIZE}) by keyset cursor against OFFSET ${(DEEP_PAGE - 1) * PAGE_SIZE}`);
  const filters: [string, AuditFilter][] = [
    ['all rows', {}],
    ['service=kuma', { services: ['kuma'] }],
  ];
  for (const [label, filter] of filters) {
    const page = await deepPage(appDb, label, filter);
    const keyset = percentile(page.keysetMs, 50);
    const offset = percentile(page.offsetMs, 50);
    console.log(`    ${label}: walking pages 1-${DEEP_PAGE - 1} took ${seconds(page.walkMs)}`);
    figures.add({
      label: `page ${DEEP_PAGE}, ${label}: keyset / OFFSET (medians)`,
      measured: `${fmtMs(keyset)} / ${fmtMs(offset)} (OFFSET ${ratio(offset / keyset)} slower)`,
      target: 'same rows',
      met: page.sameRows,
    });
  }
}

function printPlan(title: string, plan: string[]): void {
  console.log(`    plan ${title}:`);
  for (const line of plan.slice(0, PLAN_LINES)) console.log(`      ${line}`);
  if (plan.length > PLAN_LINES) console.log(`      ... (${plan.length - PLAN_LINES} more lines)`);
}
