import type { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createAnsibleRunner, type PlaybookRunner } from '../activities/ansibleRunner';
import { startAgentReporter } from './admission/agentReporter';
import { startDispatcher } from './admission/dispatcher';
import { gpuMemoryByPid, probeHost, type HostCapacity } from './admission/hostCapacity';
import { reconcileWithTemporal } from './admission/reconcile';
import { createAdmissionRepository } from './admission/repository';
import { agentTaskQueue, type Config } from './config';
import type { Db } from './db/pool';
import { createLedgerRepository } from './ledger/repository';
import { logger } from './logger';
import { chooseWorkflowCode, type WorkflowCode } from './temporal/workflowBundle';

let runtimeInstalled = false;

/**
 * Temporal's own logs join ours. Its INFO lines are worker lifecycle chatter that our own lines
 * already say ("worker polling"), so they go to debug; so does the warning that an agent's queue
 * has no workflows, which is how agents are meant to be. Signals are handled by whoever runs the worker.
 */
export function installTemporalRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const levels: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace', DEBUG: 'debug', INFO: 'debug', WARN: 'warn', ERROR: 'error',
  };
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger('INFO', (entry) => {
      const level = entry.message.startsWith('No workflows registered') ? 'debug' : levels[entry.level];
      logger[level]({ component: 'temporal', ...entry.meta }, entry.message);
    }),
  });
}

export function connectWorker(address: string): Promise<NativeConnection> {
  installTemporalRuntime();
  return NativeConnection.connect({ address });
}

export type OpsWorkerDeps = {
  config: Config;
  db: Db;
  connection: NativeConnection;
  /** For the dispatcher's signals and reconciliation. */
  temporal: Client;
  /** Defaults to ansible-playbook; benchmarks hand in a no-op runner. */
  runner?: PlaybookRunner;
  /** This host's capacity; tests hand in fixed figures. */
  probe?: () => Promise<HostCapacity>;
  /**
   * A bundle the caller built from the sources (tests, benchmarks); else dist's prebuilt one while
   * it matches the workflow sources present, else the workflows are bundled from source now.
   */
  workflowBundle?: string;
};

function workflowCode(callersBundle: string | undefined): WorkflowCode {
  if (callersBundle) return { workflowBundle: { codePath: callersBundle } };
  const { code, fromSourceBecause } = chooseWorkflowCode();
  if (fromSourceBecause) logger.info({ reason: fromSourceBecause }, 'bundling the workflows from source');
  return code;
}

export type OpsWorker = { agentTaskQueue: string; stop(): Promise<void> };

/**
 * A worker process: one worker on the shared task queue (workflows, admission and ledger
 * activities), one on this agent's own queue (playbooks run here and nowhere else), the agent's
 * capacity report, the dispatcher (if this process wins its lock) and, on start, reconciliation.
 */
export async function startOpsWorker(deps: OpsWorkerDeps): Promise<OpsWorker> {
  installTemporalRuntime();
  const { config, db, connection, temporal } = deps;
  const pool = config.OPSLEDGER_TASK_QUEUE;
  const agentQueue = agentTaskQueue(config);
  const admission = createAdmissionRepository(db, {
    agentMaxAgeS: config.OPSLEDGER_AGENT_MAX_AGE_S,
    loadThresholdPct: config.OPSLEDGER_LOAD_THRESHOLD_PCT,
  });
  const { runPlaybook, ...shared } = createActivities({
    ledger: createLedgerRepository(db),
    admission,
    runner:
      deps.runner ??
      createAnsibleRunner({
        playbooksDir: config.OPSLEDGER_PLAYBOOKS_DIR,
        outputTailLines: config.OPSLEDGER_OUTPUT_TAIL_LINES,
        gpuMemoryByPid,
      }),
    playbookTimeoutS: config.OPSLEDGER_PLAYBOOK_TIMEOUT_S,
    secretKey: config.OPSLEDGER_SECRET_KEY,
  });
  const common = {
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    // On SIGTERM running activities get this long to finish before they are handed back.
    shutdownGraceTime: '30 seconds',
  };
  const sharedWorker = await Worker.create({
    ...common,
    taskQueue: pool,
    // A task's first workflow task comes from the pool's queue, where the SDK's fixed default leaves
    // two of its ten pollers: with a burst queued there, the bench's workers sat 60% idle while
    // workflow tasks waited 1.3 s to be picked up. Autoscaled, pollers follow the backlog.
    workflowTaskPollerBehavior: { type: 'autoscaling' },
    activities: shared,
    ...workflowCode(deps.workflowBundle),
  });
  const agentWorker = await Worker.create({
    ...common,
    taskQueue: agentQueue,
    activities: { runPlaybook },
    // A cancellation reaches a running playbook in the answer to a heartbeat. At the SDK's default
    // throttle (80% of the 30 s heartbeat timeout) an operator's cancel waited up to 24 s for the
    // next heartbeat to be sent; the runner beats every 2 s, and so may the worker.
    maxHeartbeatThrottleInterval: '2 seconds',
  });

  const reporter =
    config.OPSLEDGER_AGENT_REPORT_S > 0
      ? startAgentReporter({
          admission,
          agentId: config.OPSLEDGER_AGENT_ID,
          pool,
          taskQueue: agentQueue,
          everyS: config.OPSLEDGER_AGENT_REPORT_S,
          probe: deps.probe ?? probeHost,
        })
      : undefined;
  await reporter?.reportNow();

  const running = Promise.all([sharedWorker.run(), agentWorker.run()]);
  running.catch((err) => logger.fatal({ err }, 'worker stopped'));
  await reconcileWithTemporal({ admission, temporal, pool }).catch((err) =>
    logger.warn({ err }, 'reconciliation with Temporal failed; the dispatcher will retry what it can'),
  );
  const dispatcher = startDispatcher({ db, admission, temporal, pool });
  logger.info({ pool, agentTaskQueue: agentQueue, namespace: config.TEMPORAL_NAMESPACE }, 'worker polling');

  return {
    agentTaskQueue: agentQueue,
    async stop() {
      await dispatcher.stop();
      reporter?.stop();
      for (const worker of [sharedWorker, agentWorker]) {
        if (worker.getState() === 'RUNNING') worker.shutdown();
      }
      await running;
    },
  };
}
