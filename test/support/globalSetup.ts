import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { dropLogin, ensureAppLogin, loginUrl, type AppLogin } from '../../src/db/appLogin';
import { databaseUrl, ensureDatabase } from '../../src/db/databases';
import { startEmbeddedPostgres } from '../../src/db/embeddedPostgres';
import { migrate } from '../../src/db/migrate';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { startTemporalDevServer } from '../../src/temporal/devServer';
import { QUIET_BUNDLER, workflowBundlerOptions } from '../../src/temporal/workflowBundle';
import { freePort } from './ports';
import { TEST_ENV, type TestServices } from './testEnv';

/**
 * Starts what the tests share: a fresh PostgreSQL database (on DATABASE_URL's server, or an
 * embedded cluster), migrated as its owner, with an application login of its own; a Temporal
 * dev server on free ports with a throwaway SQLite file; and the workflow bundle built once from
 * source. Workers read them from the env.
 */
export default async function globalSetup(): Promise<void> {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-test-'));
  const services: TestServices = { scratch, stops: [] };
  (globalThis as { __opsledger?: TestServices }).__opsledger = services;

  const database = `opsledger_test_${Date.now()}_${process.pid}`;
  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) {
    const pg = await startEmbeddedPostgres({
      dataDir: scratch,
      port: await freePort(),
      database: 'postgres',
      ephemeral: true,
      // An interrupted run skips the teardown; its servers must not outlive it.
      stopsWithCaller: true,
    });
    services.stops.push(pg.stop);
    serverUrl = pg.url;
  }
  const adminUrl = databaseUrl(serverUrl, 'postgres');
  await ensureDatabase(adminUrl, database);
  services.dropDatabase = { adminUrl, database };
  const ownerUrl = databaseUrl(serverUrl, database);
  await migrate(ownerUrl);
  // Roles are the whole server's, and test runs share one: each run makes a login of its own.
  const appLogin: AppLogin = { user: `${database}_app`, password: crypto.randomBytes(18).toString('base64url'), role: 'opsledger_app' };
  await ensureAppLogin(ownerUrl, appLogin);
  // The login holds no grant of its own, so it drops once its sessions' database is gone.
  services.stops.push(() => dropLogin(adminUrl, appLogin.user));

  const cli = await ensureTemporalCli(process.env.TEMPORAL_CLI);
  const [port, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const temporal = await startTemporalDevServer({
    cli,
    dbFile: path.join(scratch, 'temporal.sqlite'),
    logFile: path.join(scratch, 'temporal.log'),
    port,
    httpPort,
    metricsPort,
    namespace: 'default',
    stopsWithCaller: true,
  });
  services.stops.push(temporal.stop);

  const bundlePath = path.join(scratch, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({
    ...workflowBundlerOptions(),
    logger: QUIET_BUNDLER,
  });
  fs.writeFileSync(bundlePath, code);

  process.env[TEST_ENV.databaseUrl] = loginUrl(ownerUrl, appLogin);
  process.env[TEST_ENV.ownerUrl] = ownerUrl;
  process.env[TEST_ENV.adminUrl] = adminUrl;
  process.env[TEST_ENV.temporalAddress] = temporal.address;
  process.env[TEST_ENV.workflowBundle] = bundlePath;
  process.env[TEST_ENV.temporalCli] = cli;
  process.env.LOG_LEVEL ??= 'warn';
}
