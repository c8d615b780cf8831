import { clusterDown, clusterUp } from '../../src/cluster/cluster';
import { freePortsBelowSmallintLimit } from '../../src/cluster/ports';
import { loadClusterSettings } from '../../src/cluster/settings';
import { loadConfig } from '../../src/config';
import { dropAppLogin } from '../../src/db/appLogin';
import { databaseUrl, dropDatabase } from '../../src/db/databases';
import type { TemporalServerProcess } from './cpu';

/**
 * A Temporal server on PostgreSQL brought up by `opsledger cluster up`'s own code (schemas, config,
 * namespace, search attributes) with no agents and no API replicas, its state and logs in `dir`.
 * The bench database is the cluster's ledger too; the server's history and visibility databases
 * are `<database>_temporal` and `<database>_visibility` beside it. `stops` takes the server down
 * and drops what it made: those two databases and the application login `up` creates.
 */
export async function startTemporalOnPostgres(
  stops: (() => Promise<void>)[],
  bench: { databaseUrl: string; database: string; dir: string },
): Promise<{ address: string; process: TemporalServerProcess }> {
  const [port] = await freePortsBelowSmallintLimit(1);
  const databases = [`${bench.database}_temporal`, `${bench.database}_visibility`];
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: bench.databaseUrl,
    OPSLEDGER_CLUSTER_DIR: bench.dir,
    OPSLEDGER_CLUSTER_TEMPORAL_PORT: String(port),
    OPSLEDGER_CLUSTER_AGENTS: '0',
    OPSLEDGER_CLUSTER_APIS: '0',
    // Only the server is measured: a UI process would be one more on the machine, and one more build.
    OPSLEDGER_CLUSTER_UI: '0',
    DBNAME: databases[0],
    VISIBILITY_DBNAME: databases[1],
  };
  const adminUrl = databaseUrl(bench.databaseUrl, 'postgres');
  stops.push(async () => {
    for (const database of databases) await dropDatabase(adminUrl, database);
    await dropAppLogin(adminUrl, bench.database);
  });
  stops.push(async () => {
    await clusterDown(bench.dir);
  });
  const config = loadConfig(env);
  const { state } = await clusterUp(config, loadClusterSettings(config, env));
  const server = state.processes.find((p) => p.role === 'temporal')!;
  return { address: state.temporalAddress, process: { pid: server.pid, databases } };
}
