import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { createApp } from './api/app';
import { hashToken, newToken } from './api/auth';
import { ConfigError, taskRuntimeOf, temporalUiOf, type Config } from './config';
import { createAdmissionRepository } from './admission/repository';
import { appLoginUser, ensureAppLogin, loginUrl, refuseOwnerLogin, type AppLogin } from './db/appLogin';
import { startEmbeddedPostgres } from './db/embeddedPostgres';
import { migrate } from './db/migrate';
import { createDb, type Db } from './db/pool';
import { createLedgerRepository } from './ledger/repository';
import type { Lifecycle } from './lifecycle';
import { logger } from './logger';
import { ensureTemporalCli } from './temporal/cli';
import { startTemporalDevServer } from './temporal/devServer';
import { ensureSearchAttributes } from './temporal/searchAttributes';
import { connectWorker, startOpsWorker } from './worker';

/**
 * What `opsledger dev` runs on: the owner's login, which migrates, and the application's own
 * login, made from it, which the pools use (refuseOwnerLogin, src/db/appLogin.ts).
 */
export type DevDatabase = { ownerUrl: string; appLogin: AppLogin; appUrl: string };

/**
 * DATABASE_URL (the owner's login, which may create roles) when set, else an embedded PostgreSQL
 * kept in the data folder, as its superuser. The app login's password is generated once and kept
 * beside the admin token; the login is named after the database, as roles are the whole server's.
 */
export async function provideDatabase(config: Config, lifecycle: Lifecycle): Promise<DevDatabase> {
  let ownerUrl = config.DATABASE_URL;
  if (!ownerUrl) {
    const pg = await startEmbeddedPostgres({
      dataDir: config.OPSLEDGER_DATA_DIR,
      port: config.OPSLEDGER_EMBEDDED_PG_PORT,
      database: 'opsledger',
    });
    lifecycle.add('embedded PostgreSQL', pg.stop);
    logger.info({ url: redactPassword(pg.url) }, 'embedded PostgreSQL running');
    ownerUrl = pg.url;
  }
  return devDatabaseOf(ownerUrl, config);
}

/** The owner's login and the application's, made from it, with the app login's password kept in the data folder. */
export function devDatabaseOf(ownerUrl: string, config: Config): DevDatabase {
  const appLogin: AppLogin = {
    user: appLoginUser(decodeURIComponent(new URL(ownerUrl).pathname.slice(1))),
    password: keptInDataDir(config, 'db-app-password', () => crypto.randomBytes(24).toString('base64url')),
    role: config.OPSLEDGER_DB_ROLE,
  };
  return { ownerUrl, appLogin, appUrl: loginUrl(ownerUrl, appLogin) };
}

/** A Temporal dev server with its SQLite file in the data folder, for `opsledger dev`. */
export async function provideTemporalDevServer(config: Config, lifecycle: Lifecycle): Promise<{ address: string; uiUrl?: string }> {
  const cli = await ensureTemporalCli(config.TEMPORAL_CLI);
  const server = await startTemporalDevServer({
    cli,
    dbFile: path.join(config.OPSLEDGER_DATA_DIR, 'temporal.sqlite'),
    logFile: path.join(config.OPSLEDGER_DATA_DIR, 'temporal.log'),
    port: config.OPSLEDGER_TEMPORAL_DEV_PORT,
    uiPort: config.TEMPORAL_UI_PORT,
    namespace: config.TEMPORAL_NAMESPACE,
  });
  lifecycle.add('Temporal dev server', server.stop);
  return server;
}

/**
 * The application's pools: `database` is DATABASE_URL (the worker's and the API's, which must be
 * the application's login) or dev's. A login that could rewrite the ledger is refused.
 */
export async function openDb(database: string | DevDatabase, config: Config, lifecycle: Lifecycle): Promise<Db> {
  const url = typeof database === 'string' ? database : database.appUrl;
  await refuseOwnerLogin(url, 'DATABASE_URL');
  const db = createDb({ connectionString: url, role: config.OPSLEDGER_DB_ROLE });
  lifecycle.add('database pool', db.close);
  return db;
}

/** Migrates as the owner, then makes or updates the application's login: it needs the role 005 creates. */
export async function runMigrations(database: DevDatabase): Promise<void> {
  const { applied } = await migrate(database.ownerUrl);
  logger.info({ applied }, applied.length ? 'migrations applied' : 'schema up to date');
  await ensureAppLogin(database.ownerUrl, database.appLogin);
}

export async function startWorker(config: Config, db: Db, address: string, lifecycle: Lifecycle): Promise<void> {
  const connection = await connectWorker(address);
  const temporal = new Client({ connection: await Connection.connect({ address }), namespace: config.TEMPORAL_NAMESPACE });
  const worker = await startOpsWorker({ config, db, connection, temporal });
  lifecycle.add('worker', async () => {
    await worker.stop();
    await connection.close();
    await temporal.connection.close();
  });
}

/** Load % `opsledger dev` admits up to unless told otherwise: its one agent also runs the whole stack. */
export const DEV_LOAD_THRESHOLD_PCT = 200;

/**
 * `opsledger dev` needs no set-up: it keeps a local admin token (its hash joins the configured
 * tokens) and a key for sealing secrets in the data folder, both 0600. Its only agent is the
 * machine that also runs PostgreSQL, Temporal and the API, whose start alone can hold a
 * two-core machine above 80% load, so it admits up to DEV_LOAD_THRESHOLD_PCT unless
 * OPSLEDGER_LOAD_THRESHOLD_PCT is set.
 */
export function devDefaults(config: Config, env: NodeJS.ProcessEnv = process.env): { token: string; config: Config } {
  const token = keptInDataDir(config, 'admin-token', newToken);
  const tokens = [...config.OPSLEDGER_TOKENS, { name: 'dev-admin', role: 'admin' as const, sha256: hashToken(token) }];
  const secretKey = config.OPSLEDGER_SECRET_KEY ?? keptInDataDir(config, 'secret-key', () => crypto.randomBytes(32).toString('base64url'));
  const loadThreshold = env.OPSLEDGER_LOAD_THRESHOLD_PCT ? config.OPSLEDGER_LOAD_THRESHOLD_PCT : DEV_LOAD_THRESHOLD_PCT;
  return {
    token,
    config: { ...config, OPSLEDGER_TOKENS: tokens, OPSLEDGER_SECRET_KEY: secretKey, OPSLEDGER_LOAD_THRESHOLD_PCT: loadThreshold },
  };
}

/** A generated secret kept in the data folder (0600), made on first use. */
export function keptInDataDir(config: Config, name: string, make: () => string): string {
  const file = path.join(config.OPSLEDGER_DATA_DIR, name);
  fs.mkdirSync(config.OPSLEDGER_DATA_DIR, { recursive: true });
  if (!fs.existsSync(file)) fs.writeFileSync(file, `${make()}\n`, { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

export async function startApi(config: Config, db: Db, address: string, lifecycle: Lifecycle): Promise<http.Server> {
  if (config.OPSLEDGER_TOKENS.length === 0) {
    throw new ConfigError(['OPSLEDGER_TOKENS: the API needs at least one token (make one with `opsledger token --name NAME --role admin`)']);
  }
  const connection = await Connection.connect({ address });
  await ensureSearchAttributes(connection, config.TEMPORAL_NAMESPACE);
  const temporal = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const app = createApp({
    db,
    ledger: createLedgerRepository(db),
    temporal,
    admission: createAdmissionRepository(db, {
      agentMaxAgeS: config.OPSLEDGER_AGENT_MAX_AGE_S,
      loadThresholdPct: config.OPSLEDGER_LOAD_THRESHOLD_PCT,
    }),
    runtime: taskRuntimeOf(config),
    playbooksDir: config.OPSLEDGER_PLAYBOOKS_DIR,
    tokens: config.OPSLEDGER_TOKENS,
    secretKey: config.OPSLEDGER_SECRET_KEY,
    // A per-process key still works for one API; replicas must share OPSLEDGER_CURSOR_SECRET.
    cursorSecret: config.OPSLEDGER_CURSOR_SECRET ?? crypto.randomBytes(32).toString('base64url'),
    temporalUi: temporalUiOf(config),
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.PORT, resolve);
  });
  lifecycle.add('API', async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await temporal.connection.close();
  });
  return server;
}

function redactPassword(url: string): string {
  return url.replace(/:\/\/([^:]+):[^@]+@/, '://$1:***@');
}
