import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { ConfigError, loadConfig } from '../../src/config';
import { loginUrl } from '../../src/db/appLogin';
import { databaseUrl, dropDatabase } from '../../src/db/databases';
import { migrate } from '../../src/db/migrate';
import { createDb, type Db } from '../../src/db/pool';
import { createLedgerRepository } from '../../src/ledger/repository';
import { verifyChain } from '../../src/ledger/verify';
import { Lifecycle } from '../../src/lifecycle';
import { openDb, provideDatabase, runMigrations } from '../../src/stack';
import type { LedgerEntry } from '../../contracts';
import { testEnv } from '../support/testEnv';

const failedRow = (taskId: string): LedgerEntry => ({
  taskId,
  runId: 'run-1',
  seq: 2,
  status: 'failed',
  action: 'deploy',
  services: ['kuma'],
  actor: 'opsledger',
  failure: { message: 'exit 2' },
  failureClass: 'application_error',
});

/**
 * The rewrite of the hostile review, step by step: back at the login, past the DDL guard with the
 * setting anyone may set, the reject trigger off, a failed row made a success, its hash recomputed.
 * The chain after it would then need rehashing too; the first step refused is enough.
 */
const REWRITE: [sql: string, refusal: RegExp][] = [
  ['ALTER TABLE tasks DISABLE TRIGGER tasks_reject_update_delete', /^must be owner of table tasks$/],
  ["UPDATE tasks SET status = 'succeeded', failure = NULL, failure_class = NULL WHERE status = 'failed'", /^permission denied for table tasks$/],
  ['UPDATE tasks t SET row_hash = ledger_row_hash(t, t.prev_hash)', /^permission denied for table tasks$/],
  ['DELETE FROM tasks', /^permission denied for table tasks$/],
  ['DROP TABLE tasks CASCADE', /^must be owner of table tasks$/],
  ['CREATE OR REPLACE FUNCTION tasks_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$', /^permission denied for schema public$/],
  ['ALTER FUNCTION ledger_verify() OWNER TO CURRENT_USER', /^must be owner of function ledger_verify$/],
  // A stand-in the session's own reads (ledger_verify() included) would see before the ledger.
  ['CREATE TEMPORARY TABLE tasks (chain_seq bigint, row_hash text)', /^permission denied to create temporary tables in database/],
];

async function connect(url: string, options?: string): Promise<Client> {
  const client = new Client({ connectionString: url, options });
  await client.connect();
  return client;
}

async function asAdmin<T>(work: (admin: Client) => Promise<T>): Promise<T> {
  const admin = await connect(testEnv('adminUrl'));
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

describe('the database boundary between the application and the ledger owner', () => {
  const prefix = `opsledger_boundary_${Date.now()}_${process.pid}`;
  const appLogin = decodeURIComponent(new URL(testEnv('databaseUrl')).username);
  // docker-compose's shape: the schema migrated by an owner login that is no superuser.
  const composeOwner = { user: `${prefix}_owner`, password: crypto.randomBytes(12).toString('hex') };
  const composeDatabase = `${prefix}_compose`;
  const composeOwnerUrl = loginUrl(databaseUrl(testEnv('adminUrl'), composeDatabase), composeOwner);
  const roles = [composeOwner.user];
  const databases = [composeDatabase];

  beforeAll(async () => {
    await asAdmin(async (admin) => {
      await admin.query(`CREATE ROLE ${admin.escapeIdentifier(composeOwner.user)} LOGIN PASSWORD ${admin.escapeLiteral(composeOwner.password)}`);
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(composeDatabase)} OWNER ${admin.escapeIdentifier(composeOwner.user)}`);
    });
    await migrate(composeOwnerUrl);
  });
  afterAll(async () => {
    for (const database of databases) await dropDatabase(testEnv('adminUrl'), database);
    await asAdmin(async (admin) => {
      for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${admin.escapeIdentifier(role)}`);
    });
  });

  describe.each([
    ['migrated by a superuser, as `opsledger dev` and the tests do', () => testEnv('databaseUrl')],
    ['migrated by an owner that is no superuser, as docker-compose does', () => databaseUrl(testEnv('databaseUrl'), composeDatabase)],
  ])('on a database %s', (_shape, appUrl) => {
    let app: Db;
    let session: Client;
    beforeAll(async () => {
      app = createDb({ connectionString: appUrl(), role: 'opsledger_app', max: 1 });
      session = await connect(appUrl(), '-c role=opsledger_app');
    });
    afterAll(async () => {
      await session.end();
      await app.close();
    });

    test("the app's login, back at itself with SET ROLE NONE and the migration setting on, cannot rewrite a failed row, and verify stays true", async () => {
      const taskId = `boundary-${Date.now()}`;
      const recorded = await createLedgerRepository(app).append(failedRow(taskId));

      await session.query('SET ROLE NONE');
      const { rows } = await session.query('SELECT current_user AS now_as');
      expect(rows).toEqual([{ now_as: appLogin }]);
      await session.query('SET opsledger.migrating = on');
      for (const [sql, refusal] of REWRITE) await expect(session.query(sql)).rejects.toThrow(refusal);

      expect(await createLedgerRepository(app).trail(taskId)).toEqual([recorded]);
      const verification = await verifyChain(app);
      expect(verification.ok).toBe(true);
      expect(BigInt(verification.head!.chainSeq)).toBeGreaterThanOrEqual(BigInt(recorded.chainSeq));
    });

    test("the app's login cannot become the owner, a superuser or a role maker", async () => {
      const { rows } = await session.query(
        `SELECT pg_has_role(session_user, c.relowner, 'MEMBER') AS member_of_owner, r.rolsuper, r.rolcreaterole
           FROM pg_class c, pg_roles r WHERE c.oid = 'tasks'::regclass AND r.rolname = session_user`,
      );
      expect(rows).toEqual([{ member_of_owner: false, rolsuper: false, rolcreaterole: false }]);
      const [{ owner }] = (await session.query(`SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'tasks'::regclass`)).rows;
      const ident = session.escapeIdentifier(owner);
      await expect(session.query(`SET ROLE ${ident}`)).rejects.toThrow(`permission denied to set role "${owner}"`);
      await expect(session.query(`SET SESSION AUTHORIZATION ${ident}`)).rejects.toThrow('permission denied to set session authorization');
      await expect(session.query(`GRANT ${ident} TO CURRENT_USER`)).rejects.toThrow(/^(must have admin option on role|must be superuser to alter superusers)/);
      await expect(session.query('ALTER ROLE CURRENT_USER SUPERUSER')).rejects.toThrow('must be superuser to alter superuser roles or change superuser attribute');
      await expect(session.query('ALTER ROLE CURRENT_USER CREATEROLE')).rejects.toThrow('permission denied');
    });
  });

  test('a NOINHERIT app login works through the switch to opsledger_app, and holds nothing once back at itself', async () => {
    const login = { user: `${prefix}_noinherit`, password: crypto.randomBytes(12).toString('hex') };
    roles.push(login.user);
    await asAdmin(async (admin) => {
      const user = admin.escapeIdentifier(login.user);
      await admin.query(`CREATE ROLE ${user} LOGIN NOINHERIT PASSWORD ${admin.escapeLiteral(login.password)} IN ROLE opsledger_app`);
    });
    const session = await connect(loginUrl(testEnv('databaseUrl'), login), '-c role=opsledger_app');
    try {
      expect((await session.query('SELECT count(*) >= 0 AS reads FROM tasks')).rows).toEqual([{ reads: true }]);
      await session.query('SET ROLE NONE');
      await expect(session.query('SELECT 1 FROM tasks LIMIT 1')).rejects.toThrow('permission denied for table tasks');
      await session.query('SET opsledger.migrating = on');
      for (const [sql, refusal] of REWRITE) await expect(session.query(sql)).rejects.toThrow(refusal);
    } finally {
      await session.end();
    }
  });

  test("the worker's and the API's pools refuse a login that could rewrite the ledger, and take the app's", async () => {
    const lifecycle = new Lifecycle();
    const config = loadConfig({});
    try {
      const superuser = openDb(testEnv('ownerUrl'), config, lifecycle);
      await expect(superuser).rejects.toBeInstanceOf(ConfigError);
      await expect(superuser).rejects.toThrow(/DATABASE_URL: the login \S+ could rewrite the ledger \(\S+ is a superuser/);
      // The compose owner could run the whole rewrite above: it owns the ledger, and no guard stops it.
      await expect(openDb(composeOwnerUrl, config, lifecycle)).rejects.toThrow(
        `DATABASE_URL: the login ${composeOwner.user} could rewrite the ledger (${composeOwner.user} may create temporary tables; ${composeOwner.user} owns the ledger; pg_database_owner owns the ledger's schema)`,
      );
      const db = await openDb(testEnv('databaseUrl'), config, lifecycle);
      expect(await db.query('SELECT session_user AS login, current_user AS acting_as')).toEqual([
        { login: appLogin, acting_as: 'opsledger_app' },
      ]);
    } finally {
      await lifecycle.close();
    }
  });

  test('`opsledger dev` migrates as the owner and opens its pools as an app login it makes, its password 0600 in the data folder', async () => {
    const devDatabase = `${prefix}_dev`;
    const devLogin = `${devDatabase}_app_login`;
    databases.push(devDatabase);
    roles.push(devLogin);
    await asAdmin((admin) => admin.query(`CREATE DATABASE ${admin.escapeIdentifier(devDatabase)}`));
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-boundary-dev-'));
    const config = loadConfig({ DATABASE_URL: databaseUrl(testEnv('ownerUrl'), devDatabase), OPSLEDGER_DATA_DIR: dataDir });
    const passwordFile = path.join(dataDir, 'db-app-password');
    const start = async () => {
      const lifecycle = new Lifecycle();
      try {
        const database = await provideDatabase(config, lifecycle);
        await runMigrations(database);
        const db = await openDb(database, config, lifecycle);
        return await db.query<{ login: string }>('SELECT session_user AS login');
      } finally {
        await lifecycle.close();
      }
    };
    try {
      expect(await start()).toEqual([{ login: devLogin }]);
      expect(fs.statSync(passwordFile).mode & 0o777).toBe(0o600);
      const password = fs.readFileSync(passwordFile, 'utf8');

      expect(await start()).toEqual([{ login: devLogin }]);
      expect(fs.readFileSync(passwordFile, 'utf8')).toBe(password);

      // A reset data folder on a database that stays: the login gets the new password.
      fs.rmSync(passwordFile);
      expect(await start()).toEqual([{ login: devLogin }]);
      expect(fs.readFileSync(passwordFile, 'utf8')).not.toBe(password);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
