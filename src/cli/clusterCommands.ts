import type { Command } from 'commander';
import { clusterDown, clusterUp } from '../cluster/cluster';
import { loadClusterSettings } from '../cluster/settings';
import { stateFile } from '../cluster/state';
import { ensureTemporalServer, ensureTemporalSqlTool } from '../cluster/temporalServer';
import { ensureTemporalUiServer } from '../cluster/temporalUi';
import { loadConfig } from '../config';

export function registerClusterCommands(program: Command): void {
  const cluster = program
    .command('cluster')
    .description("The production shape on this machine without Docker: a Temporal server on PostgreSQL, its Web UI, agents and API replicas, each its own process.");

  cluster
    .command('up')
    .description(
      'Start what is not running yet (the Web UI unless OPSLEDGER_CLUSTER_UI=0, OPSLEDGER_CLUSTER_AGENTS agents, OPSLEDGER_CLUSTER_APIS API replicas), stop the agents and replicas beyond those counts, and print what runs where.',
    )
    .action(async () => {
      const config = loadConfig();
      const settings = loadClusterSettings(config);
      const { state, adminToken, apiUrls, uiUrl, started, stopped } = await clusterUp(config, settings);
      const changes = [...(started.length ? [`started ${started.join(', ')}`] : []), ...(stopped.length ? [`stopped ${stopped.join(', ')}`] : [])];
      const rows = state.processes.map((p) => `  ${p.name.padEnd(12)} pid ${String(p.pid).padEnd(8)}${p.port ? `port ${p.port}`.padEnd(11) : ''.padEnd(11)}${p.log}`);
      console.log(
        [
          `cluster up (${changes.length ? changes.join('; ') : 'everything was already running'})`,
          ...rows,
          `Temporal     ${state.temporalAddress}  namespace ${state.namespace}`,
          `Temporal UI  ${uiUrl ?? '(not started: OPSLEDGER_CLUSTER_UI=0)'}`,
          `API          ${apiUrls.join('  ')}`,
          `Admin token  ${adminToken}   (kept in ${settings.OPSLEDGER_CLUSTER_DIR}/admin-token)`,
          `State        ${stateFile(settings.OPSLEDGER_CLUSTER_DIR)}   (opsledger cluster down stops exactly these)`,
        ].join('\n'),
      );
      // The embedded PostgreSQL's handle would keep this process alive; every part runs on without it.
      process.exit(0);
    });

  cluster
    .command('tools')
    .description('Find the Temporal server, its sql tool and (unless OPSLEDGER_CLUSTER_UI=0) the Web UI server, building them with `go install` when missing, and print their paths.')
    .action(async () => {
      const settings = loadClusterSettings(loadConfig());
      console.log(await ensureTemporalServer(settings.TEMPORAL_SERVER));
      console.log(await ensureTemporalSqlTool(settings.TEMPORAL_SQL_TOOL));
      if (settings.OPSLEDGER_CLUSTER_UI) console.log(await ensureTemporalUiServer(settings.TEMPORAL_UI_SERVER));
    });

  cluster
    .command('down')
    .description('Stop exactly the processes the state file records: the Web UI, API replicas, agents, the Temporal server, then the embedded PostgreSQL.')
    .action(async () => {
      const settings = loadClusterSettings(loadConfig());
      const stopped = await clusterDown(settings.OPSLEDGER_CLUSTER_DIR);
      console.log(stopped.length ? `cluster down: stopped ${stopped.join(', ')}` : 'cluster down: nothing was running');
    });
}
