import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { databaseUrl, dropDatabase, ensureDatabase } from '../../src/db/databases';
import { migrate } from '../../src/db/migrate';
import { sqlDir } from '../../src/paths';
import { testEnv } from '../support/testEnv';

const REFUSED = /^tasks is an append-only ledger: .+ is refused; schema changes go through `opsledger migrate`$/;

// Each weakens the ledger: switches a guard trigger off, removes it, or replaces its function.
const WEAKENING_DDL = [
  'ALTER TABLE tasks DISABLE TRIGGER tasks_reject_update_delete',
  'ALTER TABLE tasks ENABLE REPLICA TRIGGER tasks_reject_update_delete',
  'ALTER TABLE tasks ENABLE TRIGGER tasks_chain_append',
  'ALTER TABLE tasks DROP COLUMN row_hash',
  'ALTER TABLE tasks RENAME TO tasks_old',
  'DROP TABLE tasks CASCADE',
  'DROP TRIGGER tasks_reject_truncate ON tasks',
  'CREATE RULE tasks_ignore_delete AS ON DELETE TO tasks DO INSTEAD NOTHING',
  `CREATE OR REPLACE FUNCTION tasks_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
  'ALTER FUNCTION tasks_reject_change() RENAME TO tasks_reject_change_old',
  'DROP FUNCTION ledger_row_hash(tasks, text)',
  'ALTER FUNCTION ledger_verify() SECURITY DEFINER',
];

describe('the ledger DDL guard', () => {
  const prefix = `opsledger_ddlguard_${Date.now()}_${process.pid}`;
  const databases: string[] = [];
  let owner: Client;

  async function createDatabase(name: string): Promise<string> {
    const database = `${prefix}_${name}`;
    await ensureDatabase(testEnv('adminUrl'), database);
    databases.push(database);
    return databaseUrl(testEnv('adminUrl'), database);
  }
  /** The migrations that exist, plus `extra`, in a folder of their own. */
  function migrationsDir(keep: (name: string) => boolean, extra: Record<string, string> = {}): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-migrations-'));
    for (const name of fs.readdirSync(sqlDir).filter((n) => n.endsWith('.sql') && keep(n))) {
      fs.copyFileSync(path.join(sqlDir, name), path.join(dir, name));
    }
    for (const [name, sql] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), sql);
    return dir;
  }
  async function triggerStates(client: Client) {
    const { rows } = await client.query(
      `SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'tasks'::regclass AND NOT tgisinternal ORDER BY tgname`,
    );
    return rows;
  }

  let url: string;
  beforeAll(async () => {
    url = await createDatabase('main');
    await migrate(url);
    owner = new Client({ connectionString: url });
    await owner.connect();
  });
  afterAll(async () => {
    await owner.end();
    for (const database of databases) await dropDatabase(testEnv('adminUrl'), database);
  });

  test('is installed by the migration (the test server role is a superuser)', async () => {
    const { rows } = await owner.query(`SELECT evtname, evtevent, evtenabled FROM pg_event_trigger ORDER BY evtname`);
    expect(rows).toEqual([
      { evtname: 'ledger_ddl_guard_command', evtevent: 'ddl_command_end', evtenabled: 'O' },
      { evtname: 'ledger_ddl_guard_drop', evtevent: 'sql_drop', evtenabled: 'O' },
    ]);
  });

  test('refuses DDL that would weaken the ledger, for the owner too, and leaves it as it was', async () => {
    const before = await triggerStates(owner);
    for (const ddl of WEAKENING_DDL) {
      await expect(owner.query(ddl)).rejects.toThrow(REFUSED);
    }
    expect(await triggerStates(owner)).toEqual(before);
    expect(before.map((t) => t.tgenabled)).toEqual(before.map(() => 'A'));
    const { rows } = await owner.query(`SELECT prosrc FROM pg_proc WHERE proname = 'tasks_reject_change'`);
    expect(rows).toHaveLength(1);
    expect(rows[0].prosrc).toContain('append-only ledger');
    await owner.query(
      `INSERT INTO tasks (task_id, seq, status, action, services_touched, actor) VALUES ('guarded', 1, 'queued', 'deploy', '{kuma}', 'test')`,
    );
    await expect(owner.query(`DELETE FROM tasks WHERE task_id = 'guarded'`)).rejects.toThrow('DELETE is not allowed');
  });

  test('DROP TABLE tasks without CASCADE is already refused by what depends on it', async () => {
    await expect(owner.query('DROP TABLE tasks')).rejects.toThrow('cannot drop table tasks because other objects depend on it');
  });

  test('leaves other DDL alone, indexes on tasks included', async () => {
    await owner.query('CREATE TABLE guard_unrelated (id int)');
    await owner.query('ALTER TABLE guard_unrelated ADD COLUMN note text');
    await owner.query('DROP TABLE guard_unrelated');
    await owner.query('CREATE INDEX tasks_guard_test_idx ON tasks (actor)');
    await owner.query('DROP INDEX tasks_guard_test_idx');
  });

  test('lets the same DDL through inside a migration transaction, and only there', async () => {
    await owner.query('BEGIN');
    try {
      await owner.query("SELECT set_config('opsledger.migrating', 'on', true)");
      for (const ddl of WEAKENING_DDL.filter((d) => !d.startsWith('DROP TABLE') && !d.includes('RENAME TO tasks_old'))) {
        await owner.query(ddl);
      }
      await owner.query('DROP TABLE tasks CASCADE');
    } finally {
      await owner.query('ROLLBACK');
    }
    await expect(owner.query(WEAKENING_DDL[0]!)).rejects.toThrow(REFUSED);
  });

  test('the migration setting opens the guard for the owner only: a role that may drop the ledger without owning it stays refused', async () => {
    const schemaOwnerUrl = await createDatabase('schemaowner');
    await migrate(schemaOwnerUrl);
    const role = `${prefix}_schema_owner`;
    const client = new Client({ connectionString: schemaOwnerUrl });
    await client.connect();
    try {
      const ident = client.escapeIdentifier(role);
      await client.query(`CREATE ROLE ${ident} NOLOGIN`);
      // The owner of a schema may drop any table in it; TRIGGER lets a role add triggers to tasks.
      await client.query(`ALTER SCHEMA public OWNER TO ${ident}`);
      await client.query(`GRANT TRIGGER ON tasks TO ${ident}`);
      await client.query(`SET ROLE ${ident}`);
      await client.query('SET opsledger.migrating = on');
      await expect(client.query('DROP TABLE tasks CASCADE')).rejects.toThrow(REFUSED);
      await expect(
        client.query('CREATE TRIGGER tasks_swallow BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()'),
      ).rejects.toThrow(REFUSED);
      await client.query('RESET ROLE');
      expect((await client.query(`SELECT to_regclass('tasks') IS NOT NULL AS kept`)).rows).toEqual([{ kept: true }]);
    } finally {
      await client.query('RESET ROLE').catch(() => undefined);
      await client.end();
      await dropDatabase(testEnv('adminUrl'), `${prefix}_schemaowner`);
      const admin = new Client({ connectionString: testEnv('adminUrl') });
      await admin.connect();
      await admin.query(`DROP ROLE ${admin.escapeIdentifier(role)}`).finally(() => admin.end());
    }
  });

  test('the migration runner applies a later file that alters tasks', async () => {
    const dir = migrationsDir(() => true, {
      '999_guard_test_note.sql': 'ALTER TABLE tasks ADD COLUMN guard_test_note text;',
    });
    try {
      expect((await migrate(url, dir)).applied).toEqual(['999_guard_test_note.sql']);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
    const { rows } = await owner.query(
      `SELECT 1 FROM pg_attribute WHERE attrelid = 'tasks'::regclass AND attname = 'guard_test_note'`,
    );
    expect(rows).toHaveLength(1);
  });

  test('the file applies as plain SQL without the migration setting, as psql would apply it', async () => {
    const plainUrl = await createDatabase('plain');
    const dir = migrationsDir((name) => name < '003');
    try {
      await migrate(plainUrl, dir);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
    const client = new Client({ connectionString: plainUrl });
    await client.connect();
    try {
      await client.query(fs.readFileSync(path.join(sqlDir, '003_ledger_guard.sql'), 'utf8'));
      await expect(client.query(WEAKENING_DDL[0]!)).rejects.toThrow(REFUSED);
      const { rows } = await client.query('SELECT rows_checked::int FROM ledger_verify()');
      expect(rows).toEqual([{ rows_checked: 0 }]);
    } finally {
      await client.end();
    }
  });
});
