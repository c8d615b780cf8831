import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, Worker, type NativeConnection } from '@temporalio/worker';
import { QUIET_BUNDLER, workflowBundlerOptions } from '../../src/temporal/workflowBundle';
import type { PlaybookRunner } from '../../activities/ansibleRunner';
import type { HostCapacity } from '../../src/admission/hostCapacity';
import { createAdmissionRepository, type AdmissionRepository } from '../../src/admission/repository';
import { loadConfig, type Config } from '../../src/config';
import { createDb, type Db } from '../../src/db/pool';
import { projectRoot } from '../../src/paths';
import { startOpsWorker, type OpsWorker } from '../../src/worker';
import { bareActivities } from './bareActivities';
import { within } from './wait';


/** Bundles our workflows from source into the scratch folder; the worker loads the file. */
export async function bundleOurWorkflows(scratch: string): Promise<string> {
  const { code } = await bundleWorkflowCode({ ...workflowBundlerOptions(), logger: QUIET_BUNDLER });
  const file = path.join(scratch, 'workflow-bundle.js');
  fs.writeFileSync(file, code);
  return file;
}

/** The baseline's own bundle, so nothing of ours is loaded into its workflow sandbox. */
export async function bundleBareWorkflows(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(projectRoot, 'bench', 'baseline', 'workflows.ts'),
    logger: QUIET_BUNDLER,
  });
  return code;
}

/** A roomy, idle agent unless a phase says otherwise. */
export const ROOMY_HOST: HostCapacity = {
  cpuCores: 1024,
  loadPct: 0,
  memoryTotalMb: 1_000_000,
  memoryFreeMb: 1_000_000,
  gpuVramTotalMb: null,
  gpuVramFreeMb: null,
};

export type BenchWorker = {
  config: Config;
  worker: OpsWorker;
  /** Connected as the application role, like the worker itself. */
  db: Db;
  admission: AdmissionRepository;
  stop(): Promise<void>;
};

/** Our whole worker in this process (shared queue, agent queue, reporter, dispatcher), with the runner given. */
export async function startBenchWorker(opts: {
  databaseUrl: string;
  temporalAddress: string;
  connection: NativeConnection;
  temporal: Client;
  workflowBundle: string;
  runner: PlaybookRunner;
  name: string;
  env: NodeJS.ProcessEnv;
  host?: HostCapacity;
}): Promise<BenchWorker> {
  const config = loadConfig({
    DATABASE_URL: opts.databaseUrl,
    TEMPORAL_ADDRESS: opts.temporalAddress,
    OPSLEDGER_TASK_QUEUE: `bench-${opts.name}`,
    OPSLEDGER_AGENT_ID: `bench-agent-${opts.name}`,
    OPSLEDGER_LOAD_THRESHOLD_PCT: '1000',
    ...opts.env,
  });
  const db = createDb({ connectionString: opts.databaseUrl, role: config.OPSLEDGER_DB_ROLE });
  const worker = await startOpsWorker({
    config,
    db,
    connection: opts.connection,
    temporal: opts.temporal,
    runner: opts.runner,
    probe: async () => opts.host ?? ROOMY_HOST,
    workflowBundle: opts.workflowBundle,
  });
  const admission = createAdmissionRepository(db, {
    agentMaxAgeS: config.OPSLEDGER_AGENT_MAX_AGE_S,
    loadThresholdPct: config.OPSLEDGER_LOAD_THRESHOLD_PCT,
  });
  return {
    config,
    worker,
    db,
    admission,
    async stop() {
      await stopWithin(`worker ${config.OPSLEDGER_AGENT_ID}`, async () => {
        await worker.stop();
        await db.close();
      });
    },
  };
}

/** The baseline's worker: its own task queue, its own bundle, the no-op activities. */
export async function startBareWorker(opts: {
  connection: NativeConnection;
  taskQueue: string;
  workflowCode: string;
}): Promise<{ stop(): Promise<void> }> {
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: 'default',
    taskQueue: opts.taskQueue,
    workflowBundle: { code: opts.workflowCode },
    activities: bareActivities,
  });
  const running = worker.run();
  return {
    async stop() {
      await stopWithin(`baseline worker ${opts.taskQueue}`, async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
    },
  };
}

const STOP_TIMEOUT_MS = 60_000;

/**
 * Stops run in `finally` blocks: a stop that fails or hangs is reported, never thrown, so it does
 * not hide why the bench stopped, and the bench still gets to drop its database.
 */
async function stopWithin(what: string, stop: () => Promise<void>): Promise<void> {
  try {
    await within(stop(), STOP_TIMEOUT_MS, `stopping ${what}`, () => 'still stopping');
  } catch (err) {
    console.error(`stopping ${what} failed: ${(err as Error).message}`);
  }
}
