import path from 'node:path';
import { z } from 'zod';
import { parseEnv, type Config } from '../config';

const count = (what: string) =>
  z.coerce.number({ error: `expected a number of ${what}` }).int(`expected a whole number of ${what}`).min(0).max(32);

const port = z.coerce.number({ error: 'expected a port number' }).int('expected a port number').min(1).max(65535);

const databaseName = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'expected a PostgreSQL database name (lower-case letters, digits, underscore)');

/**
 * What `opsledger cluster up` adds to the common configuration. The two database names are the
 * ones docker-compose.yml gives Temporal's auto-setup image, so both shapes read the same names.
 */
export const ClusterSettingsSchema = z.object({
  /** Agents: `opsledger worker` processes, agent-1 … agent-N. */
  OPSLEDGER_CLUSTER_AGENTS: count('agents').default(2),
  /** API replicas: `opsledger api` processes on PORT, PORT+1, … */
  OPSLEDGER_CLUSTER_APIS: count('API replicas').default(2),
  /** Frontend gRPC port of the Temporal server: compose's temporal:7233. */
  OPSLEDGER_CLUSTER_TEMPORAL_PORT: port.default(7233),
  /** Whether `up` runs the Temporal Web UI (compose's temporal-ui); `0` stops one that runs. */
  OPSLEDGER_CLUSTER_UI: z.enum(['0', '1'], { error: 'expected 0 or 1' }).default('1').transform((on) => on === '1'),
  /** Its port on 127.0.0.1: compose publishes the UI on 8233. */
  OPSLEDGER_CLUSTER_UI_PORT: port.default(8233),
  /** Its state file, the server's config and every process's log; default OPSLEDGER_DATA_DIR/cluster. */
  OPSLEDGER_CLUSTER_DIR: z.string().min(1).optional(),
  /** The Temporal server, its sql tool and the Web UI server; else found or built as goTools.ts says. */
  TEMPORAL_SERVER: z.string().min(1).optional(),
  TEMPORAL_SQL_TOOL: z.string().min(1).optional(),
  TEMPORAL_UI_SERVER: z.string().min(1).optional(),
  DBNAME: databaseName.default('temporal'),
  VISIBILITY_DBNAME: databaseName.default('temporal_visibility'),
});

export type ClusterSettings = Omit<z.infer<typeof ClusterSettingsSchema>, 'OPSLEDGER_CLUSTER_DIR'> & { OPSLEDGER_CLUSTER_DIR: string };

/** Parsed like loadConfig: a bad value names its variable and rule, never the value. */
export function loadClusterSettings(config: Config, env: NodeJS.ProcessEnv = process.env): ClusterSettings {
  const settings = parseEnv(ClusterSettingsSchema, env);
  return { ...settings, OPSLEDGER_CLUSTER_DIR: settings.OPSLEDGER_CLUSTER_DIR ?? path.join(config.OPSLEDGER_DATA_DIR, 'cluster') };
}
