import { Client } from 'pg';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/db/databases';
import { migrate } from '../../src/db/migrate';
import { testEnv } from '../support/testEnv';

describe('migrations', () => {
  const database = `opsledger_migrate_${Date.now()}`;
  const url = databaseUrl(testEnv('adminUrl'), database);
  const oldDatabase = `${database}_old`;
  const oldUrl = databaseUrl(testEnv('adminUrl'), oldDatabase);

  beforeAll(() => Promise.all([ensureDatabase(testEnv('adminUrl'), database), ensureDatabase(testEnv('adminUrl'), oldDatabase)]));
  afterAll(() => Promise.all([dropDatabase(testEnv('adminUrl'), database), dropDatabase(testEnv('adminUrl'), oldDatabase)]));

  test('two processes migrating at once apply each file exactly once', async () => {
    const [a, b] = await Promise.all([migrate(url), migrate(url)]);
    const files = [...a.applied, ...b.applied].sort();
    expect(files.length).toBeGreaterThan(0);
    expect(new Set(files).size).toBe(files.length);
    expect([...a.applied, ...a.alreadyApplied].sort()).toEqual([...b.applied, ...b.alreadyApplied].sort());

    const again = await migrate(url);
    expect(again.applied).toEqual([]);
  });

  test('a database made by the files of before the consolidation is refused, and left as it was', async () => {
    const client = new Client({ connectionString: oldUrl });
    await client.connect();
    try {
      // What the old runner recorded; the check reads these names, not the objects they made.
      await client.query(`CREATE TABLE schema_migrations (
        name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      await client.query(
        `INSERT INTO schema_migrations (name, checksum)
         SELECT name, 'recorded' FROM unnest($1::text[]) AS name`,
        [['001_ledger.sql', '002_ledger_verify.sql', '003_app_role.sql', '010_ledger_known_services.sql']],
      );

      const refusal = migrate(oldUrl);
      await expect(refusal).rejects.toThrow(
        'it recorded 001_ledger.sql, 002_ledger_verify.sql, 003_app_role.sql, 010_ledger_known_services.sql',
      );
      await expect(refusal).rejects.toThrow(/cannot be upgraded/);
      await expect(refusal).rejects.toThrow(/remove its data folder \(\.opsledger, or OPSLEDGER_DATA_DIR\)/);
      await expect(refusal).rejects.toThrow(/drop and recreate the database/);

      const { rows } = await client.query(`SELECT count(*)::int AS n FROM schema_migrations`);
      expect(rows).toEqual([{ n: 4 }]);
      expect((await client.query(`SELECT to_regclass('tasks') AS tasks`)).rows).toEqual([{ tasks: null }]);
    } finally {
      await client.end();
    }
  });
});
