import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { inferIntents } from './intent';
import { OpsAgent, OpsStatus } from './searchAttributes';
import type {
  FailureClass,
  Json,
  LedgerEntry,
  PlaybookRun,
  TaskSpec,
  TaskState,
  TaskStatus,
} from './types';

export const stateQuery = defineQuery<TaskState>('state');

const { recordDecision } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// The playbook itself enforces the task timeout; the heartbeat timeout is what notices a lost
// worker, and the retry policy re-runs only infrastructure failures (playbook failures are results).
const { runPlaybook } = proxyActivities<Activities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 3 },
});

export interface TaskResult {
  taskId: string;
  status: TaskStatus;
  failureClass?: FailureClass;
}

/** One task as a state machine: queued, dispatched, then a final state, each a ledger row. */
export async function taskWorkflow(spec: TaskSpec): Promise<TaskResult> {
  const state: TaskState = {
    taskId: spec.taskId,
    status: 'queued',
    action: spec.action,
    services: spec.services,
  };
  setHandler(stateQuery, () => state);

  let seq = 0;
  const actor = spec.requestedBy ?? 'opsledger';
  const record = async (status: TaskStatus, fields: Partial<LedgerEntry> = {}) => {
    seq += 1;
    await recordDecision({
      taskId: spec.taskId,
      runId: workflowInfo().runId,
      seq,
      status,
      action: spec.action,
      services: spec.services,
      actor,
      ...fields,
    });
  };
  const transition = (status: TaskState['status']) => {
    state.status = status;
    upsertSearchAttributes([{ key: OpsStatus, value: status }]);
  };

  await record('queued', { plan: planOf(spec) });

  const agent = workflowInfo().taskQueue;
  state.agent = agent;
  upsertSearchAttributes([{ key: OpsAgent, value: agent }]);
  transition('dispatched');
  await record('dispatched', { agent, actor: 'opsledger' });

  transition('running');
  let run: PlaybookRun;
  try {
    run = await runPlaybook({
      taskId: spec.taskId,
      playbook: spec.playbook,
      inventory: spec.inventory,
      extraVars: spec.extraVars as Record<string, Json>,
      secretVars: spec.secretVars,
      checkMode: spec.checkMode,
    });
  } catch (err) {
    const failureClass = infrastructureOrApplication(err);
    transition('failed');
    state.failureClass = failureClass;
    await record('failed', {
      agent,
      actor: 'opsledger',
      failure: { message: failureMessage(err), stack: (err as Error).stack, context: { agent, plan: planOf(spec) } },
      failureClass,
    });
    return { taskId: spec.taskId, status: 'failed', failureClass };
  }

  const status = run.result;
  const failureClass = failureClassOf(run);
  transition(status);
  state.result = run.result;
  state.failureClass = failureClass;
  await record(status, {
    agent,
    actor: 'opsledger',
    outcome: outcomeOf(run),
    resourcesUsed: run.resources as unknown as Json,
    failure: failureClass
      ? { message: run.keyMessages.join('\n') || `ansible-playbook exited with ${run.exitCode}`, context: { agent } }
      : undefined,
    failureClass,
  });
  return { taskId: spec.taskId, status, failureClass };
}

export function intentsOf(spec: Pick<TaskSpec, 'action' | 'services'>): string[] {
  return inferIntents(spec.action, spec.services);
}

function planOf(spec: TaskSpec): Json {
  return {
    steps: spec.plan?.steps ?? [],
    estimatedDurationS: spec.plan?.estimatedDurationS ?? null,
    complexity: spec.plan?.complexity ?? null,
    playbook: spec.playbook,
    checkMode: spec.checkMode,
    priority: spec.priority,
    requirements: spec.requirements,
  };
}

function outcomeOf(run: PlaybookRun): Json {
  return {
    result: run.result,
    exitCode: run.exitCode,
    counts: { ...run.counts },
    keyMessages: run.keyMessages,
    steps: run.steps.map((s) => ({ ...s })),
    outputTail: run.outputTail,
  };
}

/** Documented in docs/failure-classes.md. */
function failureClassOf(run: PlaybookRun): FailureClass | undefined {
  switch (run.result) {
    case 'succeeded':
      return undefined;
    case 'timed_out':
      return 'timeout';
    case 'cancelled':
      return 'cancelled';
    case 'failed':
      return run.counts.unreachable > 0 && run.counts.failed === 0 ? 'infrastructure' : 'application_error';
  }
}

function infrastructureOrApplication(err: unknown): FailureClass {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && cause.type === 'PlaybookNotFoundError') return 'application_error';
  return 'infrastructure';
}

function failureMessage(err: unknown): string {
  const cause = err instanceof ActivityFailure && err.cause ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
