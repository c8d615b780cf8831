import { ensureGoTool, type GoTool } from './goTools';

/**
 * Newer CLI tags carry a replace directive in go.mod and cannot be built from the proxy. v1.5.1's
 * SQLite driver (modernc.org/sqlite v1.34.1) can leave the dev server's one connection answering
 * every query with "interrupted (9)" after a query's context ran out, until the server restarts:
 * the soak saw it on a loaded machine. Temporal moved to v1.44.3 for the same errors
 * (temporalio/temporal#9198), and so does this build.
 */
export const TEMPORAL_CLI: GoTool = {
  label: 'Temporal CLI',
  name: 'temporal',
  binary: 'temporal',
  module: 'github.com/temporalio/cli/cmd/temporal',
  versions: ['v1.5.1', 'v1.4.1', 'v1.3.0'],
  variable: 'TEMPORAL_CLI',
  searchPathAndGoBin: true,
  upgrades: ['modernc.org/sqlite@v1.44.3'],
};

/**
 * Finds the `temporal` CLI: $TEMPORAL_CLI, then PATH, then the project's .tools/bin, then this
 * machine's built tools, then Go's own bin folder; when none has it, builds it with Go
 * into the machine's built tools (goTools.ts).
 */
export function ensureTemporalCli(explicit?: string): Promise<string> {
  return ensureGoTool(TEMPORAL_CLI, explicit);
}
