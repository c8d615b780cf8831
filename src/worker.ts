import fs from 'node:fs';
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createAnsibleRunner, type PlaybookRunner } from '../activities/ansibleRunner';
import type { Config } from './config';
import type { Db } from './db/pool';
import { createLedgerRepository } from './ledger/repository';
import { logger } from './logger';
import { projectRoot } from './paths';

/** Built ahead of time by `npm run build`, so a production worker does not run webpack at start. */
export const workflowBundlePath = path.join(projectRoot, 'dist', 'workflow-bundle.js');

let runtimeInstalled = false;

/** Temporal's own logs join ours as JSON lines; signals are handled by whoever runs the worker. */
export function installTemporalRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error',
  };
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger('INFO', (entry) => {
      logger[levels[entry.level]]({ component: 'temporal', ...entry.meta }, entry.message);
    }),
  });
}

export type WorkerDeps = {
  config: Config;
  db: Db;
  connection: NativeConnection;
  /** Defaults to ansible-playbook; benchmarks hand in a no-op runner. */
  runner?: PlaybookRunner;
  /** Workflow code from a prebuilt bundle when present, else bundled from source now. */
  workflowBundle?: string;
};

export async function createOpsWorker({ config, db, connection, runner, workflowBundle }: WorkerDeps): Promise<Worker> {
  installTemporalRuntime();
  const activities = createActivities({
    ledger: createLedgerRepository(db),
    runner:
      runner ??
      createAnsibleRunner({ playbooksDir: config.OPSLEDGER_PLAYBOOKS_DIR, outputTailLines: config.OPSLEDGER_OUTPUT_TAIL_LINES }),
    agentId: config.OPSLEDGER_AGENT_ID,
    playbookTimeoutS: config.OPSLEDGER_PLAYBOOK_TIMEOUT_S,
  });
  const bundle = workflowBundle ?? (fs.existsSync(workflowBundlePath) ? workflowBundlePath : undefined);
  return Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.OPSLEDGER_TASK_QUEUE,
    activities,
    ...(bundle ? { workflowBundle: { codePath: bundle } } : { workflowsPath: require.resolve('../workflows') }),
    // On SIGTERM running activities get this long to finish before they are handed back.
    shutdownGraceTime: '30 seconds',
  });
}

export function connectWorker(address: string): Promise<NativeConnection> {
  installTemporalRuntime();
  return NativeConnection.connect({ address });
}
