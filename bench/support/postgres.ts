import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/db/databases';
import { startEmbeddedPostgres } from '../../src/db/embeddedPostgres';
import { migrate } from '../../src/db/migrate';
import { freePort } from '../../test/support/ports';

const LOCAL_POSTGRES = 'postgresql://postgres@127.0.0.1:5432/postgres';

/**
 * The server a bench makes its scratch database on: DATABASE_URL's, else a local one on 5432 if
 * it answers, else an embedded PostgreSQL in a temporary folder (stopped and removed by `stops`).
 */
export async function choosePostgres(stops: (() => Promise<void>)[]): Promise<{ serverUrl: string; postgres: string }> {
  if (process.env.DATABASE_URL) return { serverUrl: process.env.DATABASE_URL, postgres: "DATABASE_URL's server" };
  if (await answers(LOCAL_POSTGRES)) return { serverUrl: LOCAL_POSTGRES, postgres: 'local PostgreSQL on 127.0.0.1:5432' };
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-bench-pg-'));
  stops.push(async () => fs.rmSync(scratch, { recursive: true, force: true }));
  const pg = await startEmbeddedPostgres({ dataDir: scratch, port: await freePort(), database: 'postgres', ephemeral: true });
  stops.push(pg.stop);
  return { serverUrl: pg.url, postgres: 'embedded PostgreSQL' };
}

/** A fresh database `<prefix>_<time>`, migrated, dropped WITH (FORCE) by `stops`. */
export async function createBenchDatabase(
  stops: (() => Promise<void>)[],
  prefix: string,
): Promise<{ url: string; name: string; postgres: string }> {
  const { serverUrl, postgres } = await choosePostgres(stops);
  const name = `${prefix}_${Date.now()}`;
  const adminUrl = databaseUrl(serverUrl, 'postgres');
  await ensureDatabase(adminUrl, name);
  stops.push(() => dropDatabase(adminUrl, name));
  const url = databaseUrl(serverUrl, name);
  await migrate(url);
  return { url, name, postgres };
}

async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
