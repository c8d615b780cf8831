import { ensureGoTool, type GoTool } from './goTools';

/** Newer CLI tags carry a replace directive in go.mod and cannot be `go install`ed. */
export const TEMPORAL_CLI: GoTool = {
  label: 'Temporal CLI',
  name: 'temporal',
  binary: 'temporal',
  module: 'github.com/temporalio/cli/cmd/temporal',
  versions: ['v1.5.1', 'v1.4.1', 'v1.3.0'],
  variable: 'TEMPORAL_CLI',
  searchPathAndGoBin: true,
};

/**
 * Finds the `temporal` CLI: $TEMPORAL_CLI, then PATH, then the project's .tools/bin, then this
 * machine's built tools, then Go's own bin folder; when none has it, builds it with `go install`
 * into the machine's built tools (goTools.ts).
 */
export function ensureTemporalCli(explicit?: string): Promise<string> {
  return ensureGoTool(TEMPORAL_CLI, explicit);
}
