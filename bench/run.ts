import { logger } from '../src/logger';
import { runEnginesBench } from './engines';
import { runExportBench } from './export';
import { runLedgerBench } from './ledger';
import { runPipelineBench } from './pipeline';

/**
 * `node dist/bench/run.js [pipeline|ledger|export|engines] [phase ...]`: runs one benchmark (default:
 * pipeline), the pipeline's phases named after it only (all by default). What a bench resolves
 * with is not the exit status: 0 means it finished (its PASS/FAIL lines say how it did), 1 that
 * it stalled or failed.
 */
const BENCHES: Record<string, (phases: string[]) => Promise<unknown>> = {
  pipeline: runPipelineBench,
  ledger: runLedgerBench,
  export: runExportBench,
  engines: runEnginesBench,
};

async function main(): Promise<void> {
  // Per-task info lines and slow-query warnings would bury the figures; LOG_LEVEL=warn shows them.
  logger.level = process.env.LOG_LEVEL ?? 'error';
  const name = process.argv[2] ?? 'pipeline';
  const bench = BENCHES[name];
  if (!bench) {
    console.error(`unknown bench "${name}"; one of: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  await bench(process.argv.slice(3));
}

main().then(
  // The Temporal runtime keeps native handles open after everything is closed; the bench is done.
  () => process.exit(0),
  (err: Error) => {
    console.error(`\nbench stopped: ${err.name === 'BenchStalled' ? err.message : (err.stack ?? err.message)}`);
    process.exit(1);
  },
);
