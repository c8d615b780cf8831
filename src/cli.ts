import { Command, Option } from 'commander';
import { hashToken, newToken, ROLES } from './api/auth';
import { ConfigError, loadConfig, type Config } from './config';
import { migrate } from './db/migrate';
import { registerLedgerCommands } from './cli/auditCommands';
import { registerClusterCommands } from './cli/clusterCommands';
import { registerTaskCommands } from './cli/taskCommands';
import { CheckpointError } from './ledger/checkpoint';
import { ApiError } from './client/apiClient';
import { Lifecycle } from './lifecycle';
import { logger } from './logger';
import { ensureTemporalCli } from './temporal/cli';
import { GoToolUnavailable } from './temporal/goTools';
import { registerSearchAttributesWhenReady } from './temporal/searchAttributes';
import { openDb, provideDatabase, devDefaults, provideTemporalDevServer, runMigrations, startApi, startWorker } from './stack';

const program = new Command()
  .name('opsledger')
  .description('Durable infrastructure tasks on Temporal with a hash-chained audit ledger.')
  // A command's options belong to it, not to the command above it (`audit failures --from 7d`).
  .enablePositionalOptions();

program
  .command('dev')
  .description(
    'Everything in one process tree: Temporal dev server, PostgreSQL (DATABASE_URL or embedded), migrations, worker and API.',
  )
  .action(() =>
    runUntilSignal(async (configured, lifecycle) => {
      const { token, config } = devDefaults(configured);
      const startTemporal = process.env.TEMPORAL_ADDRESS === undefined;
      const dbUrl = await provideDatabase(config, lifecycle);
      await runMigrations(dbUrl);
      const temporal = startTemporal
        ? await provideTemporalDevServer(config, lifecycle)
        : { address: config.TEMPORAL_ADDRESS, uiUrl: undefined };
      const db = await openDb(dbUrl, config, lifecycle);
      await startWorker(config, db, temporal.address, lifecycle);
      await startApi(config, db, temporal.address, lifecycle);
      const api = `http://localhost:${config.PORT}`;
      printBanner([
        `API          ${api}/api/v1   (OpenAPI: ${api}/api/v1/openapi.json)`,
        `Audit page   ${api}/audit`,
        `Temporal UI  ${temporal.uiUrl ?? `the UI of the Temporal server at ${temporal.address}`}`,
        `Admin token  ${token}   (kept in ${config.OPSLEDGER_DATA_DIR}/admin-token)`,
        `Try          npx opsledger submit --action deploy --service kuma --playbook ping.yml --follow`,
        'Ctrl-C stops everything.',
      ]);
    }),
  );

program
  .command('worker')
  .description('Run a worker (and agent) against DATABASE_URL and TEMPORAL_ADDRESS.')
  .action(() =>
    runUntilSignal(async (config, lifecycle) => {
      const db = await openDb(requireDatabaseUrl(config), config, lifecycle);
      await startWorker(config, db, config.TEMPORAL_ADDRESS, lifecycle);
    }),
  );

program
  .command('api')
  .description('Serve the REST API against DATABASE_URL and TEMPORAL_ADDRESS.')
  .action(() =>
    runUntilSignal(async (config, lifecycle) => {
      const db = await openDb(requireDatabaseUrl(config), config, lifecycle);
      await startApi(config, db, config.TEMPORAL_ADDRESS, lifecycle);
      logger.info({ port: config.PORT }, 'API listening');
    }),
  );

program
  .command('migrate')
  .description('Apply the SQL migrations in sql/ to DATABASE_URL (as the owner role).')
  .action(async () => {
    const config = loadConfig();
    const { applied, alreadyApplied } = await migrate(requireDatabaseUrl(config));
    console.log(`applied ${applied.length} migration(s)${applied.length ? `: ${applied.join(', ')}` : ''}; ${alreadyApplied.length} already applied`);
  });

registerTaskCommands(program);
registerClusterCommands(program);
registerLedgerCommands(program.command('audit').description('The audit ledger: query it, verify its hash chain, checkpoint its head.'));

program
  .command('token')
  .description('Make an API token: prints the token (give it to the caller) and the OPSLEDGER_TOKENS entry (configure it).')
  .requiredOption('--name <name>', 'who uses the token')
  .addOption(new Option('--role <role>', 'what it may do').choices([...ROLES]).makeOptionMandatory())
  .action(({ name, role }: { name: string; role: string }) => {
    const token = newToken();
    console.log(`token:           ${token}`);
    console.log(`OPSLEDGER_TOKENS entry: ${name}:${role}:${hashToken(token)}`);
  });

program
  .command('search-attributes')
  .description("Register the Ops* search attributes in TEMPORAL_ADDRESS's namespace, waiting for it to answer (a real server's one-shot).")
  .option('--wait-s <seconds>', 'how long to wait for the namespace', Number, 180)
  .action(async ({ waitS }: { waitS: number }) => {
    const config = loadConfig();
    const names = await registerSearchAttributesWhenReady(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE, waitS);
    console.log(`search attributes registered in ${config.TEMPORAL_NAMESPACE}: ${names.join(', ')}`);
  });

program
  .command('temporal-cli')
  .description('Find the Temporal CLI, building it with Go when missing, and print its path.')
  .action(async () => {
    console.log(await ensureTemporalCli(loadConfig().TEMPORAL_CLI));
  });

function requireDatabaseUrl(config: Config): string {
  if (!config.DATABASE_URL) {
    throw new ConfigError(['DATABASE_URL: required for this command (only `opsledger dev` starts an embedded PostgreSQL)']);
  }
  return config.DATABASE_URL;
}

async function runUntilSignal(start: (config: Config, lifecycle: Lifecycle) => Promise<void>): Promise<void> {
  const config = loadConfig();
  const lifecycle = new Lifecycle();
  const stopped = lifecycle.closeOnSignals();
  try {
    await start(config, lifecycle);
  } catch (err) {
    await lifecycle.close();
    throw err;
  }
  await stopped;
}

function printBanner(lines: string[]): void {
  process.stderr.write(`\nopsledger is up\n${lines.map((l) => `  ${l}`).join('\n')}\n\n`);
}

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof GoToolUnavailable || err instanceof ApiError || err instanceof CheckpointError) {
    process.stderr.write(`opsledger: ${err.message}\n`);
  } else if ((err as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED') {
    process.stderr.write(`opsledger: cannot reach the API (${(err as { cause: Error }).cause.message}); is it running? Set OPSLEDGER_API_URL.\n`);
  } else {
    logger.fatal({ err }, 'opsledger failed');
  }
  process.exit(1);
});
