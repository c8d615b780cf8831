import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/db/embeddedPostgres';
import { freePort } from '../support/ports';

/**
 * The checkout of a root user usually lies below a 0700 folder (root's home), which the account
 * PostgreSQL runs as cannot enter. The embedded cluster must start there, for every user, and keep
 * its data across restarts, also after the process that started it was killed.
 */
describe('embedded PostgreSQL below a folder only its owner may enter', () => {
  let locked: string;
  let dataDir: string;
  const started: EmbeddedPostgresHandle[] = [];

  beforeAll(() => {
    locked = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-locked-'));
    fs.chmodSync(locked, 0o700);
    dataDir = path.join(locked, 'checkout', '.opsledger');
  });

  afterAll(async () => {
    for (const pg of started) await pg.stop();
    fs.rmSync(locked, { recursive: true, force: true });
  });

  /** The last start is ephemeral: its stop removes the cluster, also one kept outside the checkout. */
  async function start(opts: { last?: boolean } = {}): Promise<EmbeddedPostgresHandle> {
    const pg = await startEmbeddedPostgres({
      dataDir,
      port: await freePort(),
      database: 'kept',
      ephemeral: opts.last,
      stopsWithCaller: true,
    });
    started.push(pg);
    return pg;
  }

  async function query(url: string, sql: string): Promise<unknown[]> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(sql)).rows;
    } finally {
      await client.end();
    }
  }

  test('starts, and a second start finds what the first one wrote', async () => {
    const first = await start();
    await query(first.url, 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
    await first.stop();

    const second = await start();
    expect(await query(second.url, 'SELECT n FROM kept')).toEqual([{ n: 42 }]);
    await second.stop();
  });

  test('a server left running by a start that never stopped it gives way to the next start', async () => {
    const abandoned = await start();
    const next = await start({ last: true });
    expect(await query(next.url, 'SELECT n FROM kept')).toEqual([{ n: 42 }]);
    await expect(query(abandoned.url, 'SELECT 1')).rejects.toThrow();
    await next.stop();
    expect(fs.existsSync(path.join(dataDir, 'postgres'))).toBe(false);
  });
});
