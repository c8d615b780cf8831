import fs from 'node:fs';
import path from 'node:path';
import { ensureGoTool, type GoTool } from '../temporal/goTools';
import { spawnDetached } from './processes';

/** The Web UI server at compose's image version (temporalio/ui:2.42.1 is built from ui-server v2.42.1). */
const TEMPORAL_UI_VERSION = 'v2.42.1';

export const TEMPORAL_UI_SERVER: GoTool = {
  label: 'Temporal Web UI server',
  name: 'ui-server',
  binary: 'server',
  module: 'github.com/temporalio/ui-server/v2/cmd/server',
  versions: [TEMPORAL_UI_VERSION],
  variable: 'TEMPORAL_UI_SERVER',
  searchPathAndGoBin: false,
};

export function ensureTemporalUiServer(explicit?: string): Promise<string> {
  return ensureGoTool(TEMPORAL_UI_SERVER, explicit);
}

/**
 * The Web UI server's config file: the settings of the temporalio/ui image's config/docker.yaml
 * that compose's `temporal-ui` service uses, read from the same variables, so the process gets
 * compose's environment. It listens on 127.0.0.1 only: nothing here has authentication.
 */
const UI_CONFIG_YAML = `# enable-template (ui-server renders a config file that says so in its first lines)
temporalGrpcAddress: {{ env "TEMPORAL_ADDRESS" }}
host: 127.0.0.1
port: {{ env "TEMPORAL_UI_PORT" }}
enableUi: true
defaultNamespace: {{ env "TEMPORAL_DEFAULT_NAMESPACE" }}
cors:
  allowOrigins:
  {{- range env "TEMPORAL_CORS_ORIGINS" | split "," }}
    - "{{ . }}"
  {{- end }}
`;

/** Where browsers on this machine reach the UI on `port`. */
export const uiUrlOn = (port: number) => `http://127.0.0.1:${port}`;

/** Writes `dir`/config/cluster.yaml, then starts `server --root DIR --config config --env cluster start` in its own process group. */
export function spawnTemporalUi(uiServer: string, dir: string, ui: { temporalAddress: string; namespace: string; port: number }, logFile: string): number {
  fs.mkdirSync(path.join(dir, 'config'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'config', 'cluster.yaml'), UI_CONFIG_YAML);
  const env = {
    PATH: process.env.PATH,
    TEMPORAL_ADDRESS: ui.temporalAddress,
    TEMPORAL_UI_PORT: String(ui.port),
    TEMPORAL_DEFAULT_NAMESPACE: ui.namespace,
    // As compose sets it: the origin browsers open the UI at, here by both names of this machine.
    TEMPORAL_CORS_ORIGINS: `${uiUrlOn(ui.port)},http://localhost:${ui.port}`,
  };
  const args = ['--root', dir, '--config', 'config', '--env', 'cluster', 'start'];
  return spawnDetached(uiServer, args, { cwd: dir, env }, logFile, 'the Temporal Web UI server');
}
