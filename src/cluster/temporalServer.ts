import fs from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { Client } from 'pg';
import { databaseUrl, ensureDatabase } from '../db/databases';
import { logger } from '../logger';
import { tailOf } from '../logTail';
import { ensureGoTool, runCapturingOutput, type GoTool } from '../temporal/goTools';
import { isRunning, spawnDetached, type RecordedProcess } from './processes';

/** The server and its schema tool at compose's image version (temporalio/auto-setup:1.29.1). */
const TEMPORAL_SERVER_VERSION = 'v1.29.1';

export const TEMPORAL_SERVER: GoTool = {
  label: 'Temporal server',
  name: 'server',
  binary: 'server',
  module: 'go.temporal.io/server/cmd/server',
  versions: [TEMPORAL_SERVER_VERSION],
  variable: 'TEMPORAL_SERVER',
  searchPathAndGoBin: false,
};

export const TEMPORAL_SQL_TOOL: GoTool = {
  label: 'Temporal sql tool',
  name: 'sql',
  binary: 'sql',
  module: 'go.temporal.io/server/cmd/tools/sql',
  versions: [TEMPORAL_SERVER_VERSION],
  variable: 'TEMPORAL_SQL_TOOL',
  searchPathAndGoBin: false,
};

/** Where the server finds PostgreSQL: `serverUrl` (its `postgres` database) is the one login for both of its databases. */
export type TemporalDatabases = { serverUrl: string; history: string; visibility: string };

/** The ports of the four services; membership ports are stored as smallint, so all stay below 32768. */
export type TemporalPorts = {
  frontend: number;
  frontendHttp: number;
  history: number;
  matching: number;
  worker: number;
  frontendMembership: number;
  historyMembership: number;
  matchingMembership: number;
  workerMembership: number;
};

/**
 * Creates the two databases when missing and brings their schemas to the server's version with its
 * own sql tool, which carries the schema files: the version tables once, then update-schema, which
 * applies only what is missing, so a second `cluster up` changes nothing.
 */
export async function setupTemporalSchemas(sqlTool: string, databases: TemporalDatabases): Promise<void> {
  const schemas = [
    [databases.history, 'postgresql/v12/temporal'],
    [databases.visibility, 'postgresql/v12/visibility'],
  ] as const;
  for (const [database, schemaName] of schemas) {
    await ensureDatabase(databases.serverUrl, database);
    const env = sqlToolEnv(databases.serverUrl, database);
    if (!(await hasVersionTable(databaseUrl(databases.serverUrl, database)))) await runSqlTool(sqlTool, ['setup-schema', '-v', '0.0'], env);
    await runSqlTool(sqlTool, ['update-schema', '--schema-name', schemaName], env);
  }
}

/** The login goes in the environment the tool reads, so the password is never on a command line. */
function sqlToolEnv(serverUrl: string, database: string): NodeJS.ProcessEnv {
  const url = new URL(serverUrl);
  return {
    PATH: process.env.PATH,
    SQL_PLUGIN: 'postgres12',
    SQL_HOST: url.hostname,
    SQL_PORT: url.port || '5432',
    SQL_USER: decodeURIComponent(url.username),
    SQL_PASSWORD: decodeURIComponent(url.password),
    SQL_DATABASE: database,
  };
}

async function hasVersionTable(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ found: string | null }>("SELECT to_regclass('schema_version')::text AS found");
    return rows[0]?.found !== null;
  } finally {
    await client.end();
  }
}

async function runSqlTool(sqlTool: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const { code, output } = await runCapturingOutput(sqlTool, args, env);
  if (code !== 0) throw new Error(`temporal sql tool ${args[0]} on ${env.SQL_DATABASE} exited with ${code}:\n${output.trim().slice(-8000)}`);
}

/**
 * The server's configuration, shaped like the server repository's config/development-postgres12.yaml:
 * PostgreSQL for history and for SQL visibility, every service on 127.0.0.1, no metrics or pprof
 * listener (nothing here scrapes them). The password is in the file, which only its owner may read.
 */
export function serverConfigYaml(databases: TemporalDatabases, ports: TemporalPorts, dynamicConfigFile: string): string {
  const url = new URL(databases.serverUrl);
  const datastore = (database: string, maxConns: number) => `
      sql:
        pluginName: "postgres12"
        databaseName: ${JSON.stringify(database)}
        connectAddr: ${JSON.stringify(`${url.hostname}:${url.port || '5432'}`)}
        connectProtocol: "tcp"
        user: ${JSON.stringify(decodeURIComponent(url.username))}
        password: ${JSON.stringify(decodeURIComponent(url.password))}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;
  const service = (grpcPort: number, membershipPort: number, extra = '') => `
    rpc:
      grpcPort: ${grpcPort}
      membershipPort: ${membershipPort}
      bindOnLocalHost: true${extra}`;
  return `log:
  stdout: true
  level: warn

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:${datastore(databases.history, 20)}
    postgres-visibility:${datastore(databases.visibility, 4)}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"

services:
  frontend:${service(ports.frontend, ports.frontendMembership, `\n      httpPort: ${ports.frontendHttp}`)}
  matching:${service(ports.matching, ports.matchingMembership)}
  history:${service(ports.history, ports.historyMembership)}
  worker:${service(ports.worker, ports.workerMembership)}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${ports.frontend}"

dcRedirectionPolicy:
  policy: "noop"

dynamicConfigClient:
  filepath: ${JSON.stringify(dynamicConfigFile)}
  pollInterval: "10s"
`;
}

/**
 * Workflows set the Ops* search attributes from their first task: the server must read newly
 * registered ones from the database, not from a cache that refreshes once a minute.
 */
export const DYNAMIC_CONFIG_YAML = `system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
limit.maxIDLength:
  - value: 255
`;

/** The server's files in `dir`: config/<env>.yaml (0600, it holds the password) and its dynamic config. */
export function writeServerConfig(dir: string, databases: TemporalDatabases, ports: TemporalPorts): { root: string; env: string } {
  const configDir = path.join(dir, 'config');
  fs.mkdirSync(configDir, { recursive: true });
  const dynamicConfig = path.join(configDir, 'dynamicconfig.yaml');
  fs.writeFileSync(dynamicConfig, DYNAMIC_CONFIG_YAML);
  fs.writeFileSync(path.join(configDir, 'cluster.yaml'), serverConfigYaml(databases, ports, dynamicConfig), { mode: 0o600 });
  // `mode` applies only to a new file; one from an earlier `up` keeps whatever it had.
  fs.chmodSync(path.join(configDir, 'cluster.yaml'), 0o600);
  return { root: dir, env: 'cluster' };
}

/** `server --root DIR --config config --env cluster start`, in its own process group, logging to `logFile`. */
export function spawnTemporalServer(server: string, files: { root: string; env: string }, logFile: string): number {
  const args = ['--root', files.root, '--config', 'config', '--env', files.env, 'start'];
  return spawnDetached(server, args, { cwd: files.root, env: { PATH: process.env.PATH } }, logFile, 'the Temporal server');
}

/** Until the frontend answers (its services join each other within maxJoinDuration first). */
export async function untilServing(address: string, server: RecordedProcess, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isRunning(server)) throw new Error(`the Temporal server exited; its log, ${server.log}, ends:\n${tailOf(server.log)}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2000 });
      try {
        await connection.workflowService.getSystemInfo({});
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the Temporal server at ${address} did not answer in ${timeoutMs / 1000} s: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** A real server has no namespace until one is registered (auto-setup's DEFAULT_NAMESPACE does this in compose). */
export async function ensureNamespace(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await connection.workflowService.describeNamespace({ namespace });
  } catch {
    logger.info({ namespace }, 'registering the Temporal namespace');
    await connection.workflowService
      .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('3 days') })
      .catch((err: { code?: number }) => {
        // ALREADY_EXISTS: registered meanwhile, or not yet in the frontend's namespace cache.
        if (err.code !== 6) throw err;
      });
  } finally {
    await connection.close();
  }
}

export function ensureTemporalServer(explicit?: string): Promise<string> {
  return ensureGoTool(TEMPORAL_SERVER, explicit);
}

export function ensureTemporalSqlTool(explicit?: string): Promise<string> {
  return ensureGoTool(TEMPORAL_SQL_TOOL, explicit);
}
