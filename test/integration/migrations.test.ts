import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/db/databases';
import { migrate } from '../../src/db/migrate';
import { testEnv } from '../support/testEnv';

describe('migrations', () => {
  const database = `opsledger_migrate_${Date.now()}`;
  const url = databaseUrl(testEnv('adminUrl'), database);

  beforeAll(() => ensureDatabase(testEnv('adminUrl'), database));
  afterAll(() => dropDatabase(testEnv('adminUrl'), database));

  test('two processes migrating at once apply each file exactly once', async () => {
    const [a, b] = await Promise.all([migrate(url), migrate(url)]);
    const files = [...a.applied, ...b.applied].sort();
    expect(files.length).toBeGreaterThan(0);
    expect(new Set(files).size).toBe(files.length);
    expect([...a.applied, ...a.alreadyApplied].sort()).toEqual([...b.applied, ...b.alreadyApplied].sort());

    const again = await migrate(url);
    expect(again.applied).toEqual([]);
  });
});
