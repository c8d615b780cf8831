import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type {
  Admission,
  AdmissionRequest,
  CapacityGrant,
  FailureClass,
  Json,
  LedgerEntry,
  OperatorCommand,
  OverrideCommand,
  PlaybookRun,
  TaskState,
  TaskStatus,
  TaskWorkflowInput,
} from '../contracts';
import { checkCommand } from '../contracts/commandRules';
import { inferIntents } from '../contracts/intent';
import { OpsAgent, OpsStatus } from '../contracts/searchAttributes';
import { activityFailureClass, failureMessage, runFailureClass } from './failureClasses';
import { outcomeOf, planOf } from './ledgerPayloads';
import { cancelUpdate, capacityGrantedSignal, overrideUpdate, pauseUpdate, resumeUpdate, stateQuery } from './messages';

const { recordDecision, admit, holdTask, releaseHold, overrideAdmission, finishTask, estimateDuration } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export interface TaskResult {
  taskId: string;
  status: TaskStatus;
  failureClass?: FailureClass;
}

type Command =
  | { kind: 'hold'; by: string; reason?: string }
  | { kind: 'resume'; by: string }
  | { kind: 'override'; by: string; agentId?: string }
  | { kind: 'cancel'; by: string; reason?: string };

class TaskCancelled {
  constructor(
    readonly by: string,
    readonly reason?: string,
  ) {}
}

/**
 * One task as a state machine: queued, then waiting (capacity, operator hold or dispatch hold)
 * until admitted, dispatched to an agent's own task queue, running, and a final state. Each
 * transition appends one ledger row; the per-task sequence makes a retried append a no-op.
 */
export async function taskWorkflow(input: TaskWorkflowInput): Promise<TaskResult> {
  const run = new TaskRun(input);
  run.installHandlers();
  return run.execute();
}

class TaskRun {
  readonly state: TaskState;
  private seq = 0;
  private readonly commands: Command[] = [];
  private commandsSubmitted = 0;
  private commandsDone = 0;
  private grant?: CapacityGrant;
  private held = false;
  private phase: 'admission' | 'execution' | 'final' = 'admission';
  private executionScope?: CancellationScope;
  private cancelledBy?: TaskCancelled;
  private lastRecorded?: TaskStatus;
  /** Why the previous run was lost to infrastructure, for the next `dispatched` row. */
  private lostRun?: string;

  constructor(private readonly input: TaskWorkflowInput) {
    this.state = {
      taskId: input.taskId,
      status: 'queued',
      action: input.action,
      services: input.services,
      intents: inferIntents(input.action, input.services),
      priority: input.priority,
      needs: input.requirements,
      pool: input.runtime.pool,
      attempt: 0,
    };
  }

  installHandlers(): void {
    setHandler(stateQuery, () => this.state);
    setHandler(capacityGrantedSignal, (grant) => {
      if (this.phase === 'admission' && !this.grant) this.grant = grant;
    });
    setHandler(pauseUpdate, (cmd?: OperatorCommand) => this.submit({ kind: 'hold', by: by(cmd), reason: cmd?.reason }), {
      validator: (cmd?: OperatorCommand) => {
        checkCommand('pause', cmd);
        this.mustBeWaiting('pause');
        if (this.held) throw new Error(`task ${this.input.taskId} is already held`);
      },
    });
    setHandler(resumeUpdate, (cmd?: OperatorCommand) => this.submit({ kind: 'resume', by: by(cmd) }), {
      validator: (cmd?: OperatorCommand) => {
        checkCommand('resume', cmd);
        this.mustBeWaiting('resume');
        if (!this.held) throw new Error(`task ${this.input.taskId} is not held; only a held task can be resumed`);
      },
    });
    setHandler(overrideUpdate, (cmd?: OverrideCommand) => this.submit({ kind: 'override', by: by(cmd), agentId: cmd?.agentId }), {
      validator: (cmd?: OverrideCommand) => {
        checkCommand('override', cmd);
        this.mustBeWaiting('override');
      },
    });
    setHandler(cancelUpdate, (cmd?: OperatorCommand) => this.submitCancel({ kind: 'cancel', by: by(cmd), reason: cmd?.reason }), {
      validator: (cmd?: OperatorCommand) => {
        checkCommand('cancel', cmd);
        if (this.phase === 'final') throw new Error(`task ${this.input.taskId} has already ended (${this.state.status})`);
        if (this.cancelledBy) throw new Error(`task ${this.input.taskId} is already being cancelled`);
      },
    });
  }

  async execute(): Promise<TaskResult> {
    await this.record('queued', { plan: planOf(this.input) });
    try {
      for (;;) {
        const grant = await this.waitForAgent();
        const outcome = await this.dispatch(grant);
        if (outcome) return outcome;
      }
    } catch (err) {
      if (err instanceof TaskCancelled || isCancellation(err)) {
        const cancelled = err instanceof TaskCancelled ? err : new TaskCancelled('temporal', 'workflow cancelled');
        return await CancellationScope.nonCancellable(() => this.finish('cancelled', { failureClass: 'cancelled', actor: cancelled.by, failure: { message: cancelled.reason ?? `cancelled by ${cancelled.by}` } }));
      }
      throw err;
    } finally {
      await CancellationScope.nonCancellable(() => finishTask(this.input.taskId));
      this.phase = 'final';
      this.drainCommands();
    }
  }

  /** Waits before dispatch, in queue order, until admitted, overridden or cancelled. */
  private async waitForAgent(): Promise<CapacityGrant> {
    let needsAdmission = true;
    let recordedWait: string | undefined;
    for (;;) {
      for (let cmd = this.commands.shift(); cmd; cmd = this.commands.shift()) {
        const grant = await this.applyWaitingCommand(cmd);
        this.commandsDone += 1;
        if (cmd.kind === 'resume') {
          needsAdmission = true;
          recordedWait = undefined;
        }
        if (grant) return grant;
      }
      const grant = this.grant;
      this.grant = undefined;
      // A grant signalled just before a hold is dropped: the hold already gave its reservation back.
      if (grant && !this.held) return this.resumedByDispatcher(grant);
      if (needsAdmission && !this.held) {
        needsAdmission = false;
        const admission = await admit(this.admissionRequest());
        if (admission.admitted) return this.resumedByDispatcher(admission);
        const waitKey = `${admission.reason}|${admission.shortfall}`;
        this.wait(admission);
        if (waitKey !== recordedWait) {
          recordedWait = waitKey;
          await this.record('paused', {
            actor: 'opsledger',
            outcome: { reason: admission.reason, shortfall: admission.shortfall, position: admission.position },
          });
        }
      }
      await condition(() => this.commands.length > 0 || this.grant !== undefined);
    }
  }

  /** A task that was recorded as waiting gets a `resumed` row; one already resumed by an operator does not. */
  private async resumedByDispatcher(grant: CapacityGrant): Promise<CapacityGrant> {
    if (this.lastRecorded === 'paused') {
      await this.record('resumed', { actor: 'dispatcher', outcome: { grantedAgent: grant.agentId } });
    }
    return grant;
  }

  private async applyWaitingCommand(cmd: Command): Promise<CapacityGrant | undefined> {
    switch (cmd.kind) {
      case 'hold':
        await holdTask(this.admissionRequest(), cmd.by);
        this.held = true;
        this.grant = undefined;
        this.state.waiting = { reason: 'operator_hold', shortfall: null, heldBy: cmd.by };
        this.setStatus('paused');
        await this.record('paused', { actor: cmd.by, outcome: { reason: 'operator_hold', note: cmd.reason ?? null } });
        return undefined;
      case 'resume':
        await releaseHold(this.input.taskId);
        this.held = false;
        this.state.waiting = { reason: 'capacity', shortfall: null };
        await this.record('resumed', { actor: cmd.by, outcome: { from: 'operator_hold' } });
        return undefined;
      case 'override': {
        const grant = await overrideAdmission(this.admissionRequest(), cmd.agentId);
        if (!grant) {
          throw ApplicationFailure.nonRetryable(
            cmd.agentId ? `agent ${cmd.agentId} is not live in pool ${this.input.runtime.pool}` : 'no live agent to override onto',
          );
        }
        this.held = false;
        await this.record('resumed', { actor: cmd.by, outcome: { override: true, grantedAgent: grant.agentId } });
        return grant;
      }
      case 'cancel':
        throw new TaskCancelled(cmd.by, cmd.reason);
    }
  }

  /** Runs the playbook on the granted agent; undefined means "lost to infrastructure, admit again". */
  private async dispatch(grant: CapacityGrant): Promise<TaskResult | undefined> {
    this.phase = 'execution';
    this.state.attempt += 1;
    this.state.agent = grant.agentId;
    this.state.waiting = undefined;
    upsertSearchAttributes([{ key: OpsAgent, value: grant.agentId }]);
    this.setStatus('dispatched');
    await this.record('dispatched', {
      agent: grant.agentId,
      actor: grant.overridden ? 'operator' : 'dispatcher',
      outcome: {
        attempt: this.state.attempt,
        loadPctAtDispatch: grant.loadPctAtDispatch,
        overridden: grant.overridden,
        ...(this.lostRun ? { previousAttemptLost: this.lostRun } : {}),
      },
    });

    const { runPlaybook } = proxyActivities<Activities>({
      taskQueue: grant.taskQueue,
      // Only that agent polls its queue: if it is gone, fail fast and admit again elsewhere.
      scheduleToStartTimeout: `${this.input.runtime.scheduleToStartTimeoutS} seconds`,
      startToCloseTimeout: '24 hours',
      heartbeatTimeout: `${this.input.runtime.heartbeatTimeoutS} seconds`,
      retry: { maximumAttempts: 1 },
      cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    });
    const estimate = await estimateDuration({
      action: this.input.action,
      services: this.input.services,
      planned: this.input.plan?.estimatedDurationS,
    });
    this.setStatus('running');
    let run: PlaybookRun;
    try {
      this.executionScope = new CancellationScope();
      run = await this.executionScope.run(() =>
        runPlaybook({
          taskId: this.input.taskId,
          playbook: this.input.playbook,
          inventory: this.input.inventory,
          extraVars: this.input.extraVars as Record<string, Json>,
          sealedSecrets: this.input.sealedSecrets,
          checkMode: this.input.checkMode,
        }),
      );
    } catch (err) {
      if (this.cancelledBy) throw this.cancelledBy;
      if (isCancellation(err)) throw err;
      const failureClass = activityFailureClass(err);
      const failure = { message: failureMessage(err), stack: (err as Error).stack, context: { agent: grant.agentId, attempt: this.state.attempt, plan: planOf(this.input) } };
      if (failureClass === 'infrastructure' && this.state.attempt < this.input.runtime.maxInfraAttempts) {
        this.lostRun = `attempt ${this.state.attempt} on ${grant.agentId}: ${failure.message}`;
        await finishTask(this.input.taskId);
        this.phase = 'admission';
        // Back to admission: the Temporal UI's OpsStatus must not keep saying `running`.
        this.setStatus('queued');
        return undefined;
      }
      return this.finish('failed', { agent: grant.agentId, failure, failureClass });
    } finally {
      this.executionScope = undefined;
    }
    if (this.cancelledBy) throw this.cancelledBy;
    const failureClass = runFailureClass(run);
    this.state.result = run.result;
    return this.finish(run.result, {
      agent: grant.agentId,
      outcome: outcomeOf(run),
      resourcesUsed: {
        ...run.resources,
        agentLoadPctAtDispatch: grant.loadPctAtDispatch,
        estimatedDurationS: estimate.seconds,
        estimateSource: estimate.source,
        complexity: this.input.plan?.complexity ?? null,
      } as unknown as Json,
      failure: failureClass
        ? { message: run.keyMessages.join('\n') || `ansible-playbook exited with ${run.exitCode}`, context: { agent: grant.agentId, attempt: this.state.attempt } }
        : undefined,
      failureClass,
    });
  }

  private async finish(status: TaskStatus, fields: Partial<LedgerEntry>): Promise<TaskResult> {
    this.setStatus(status);
    this.state.failureClass = fields.failureClass;
    this.state.waiting = undefined;
    await this.record(status, { actor: 'opsledger', ...fields });
    this.phase = 'final';
    return { taskId: this.input.taskId, status, failureClass: fields.failureClass };
  }

  private async submit(cmd: Command): Promise<TaskState> {
    this.commandsSubmitted += 1;
    const mine = this.commandsSubmitted;
    this.commands.push(cmd);
    await condition(() => this.commandsDone >= mine);
    return this.snapshot();
  }

  private async submitCancel(cmd: Extract<Command, { kind: 'cancel' }>): Promise<TaskState> {
    if (this.phase === 'execution') {
      this.cancelledBy = new TaskCancelled(cmd.by, cmd.reason);
      this.executionScope?.cancel();
      await condition(() => this.phase === 'final');
      return this.snapshot();
    }
    return this.submit(cmd);
  }

  /** The state as the command left it, not as it is when the answer is sent. */
  private snapshot(): TaskState {
    return JSON.parse(JSON.stringify(this.state)) as TaskState;
  }

  /** Commands that arrive as the task ends are answered with the final state. */
  private drainCommands(): void {
    this.commandsDone = this.commandsSubmitted;
    this.commands.length = 0;
  }

  private mustBeWaiting(command: string): void {
    if (this.phase !== 'admission') {
      throw new Error(`cannot ${command} task ${this.input.taskId}: it is ${this.state.status}, not waiting for dispatch`);
    }
  }

  private wait(admission: Extract<Admission, { admitted: false }>): void {
    this.state.waiting = { reason: admission.reason, shortfall: admission.shortfall, position: admission.position };
    this.setStatus('paused');
  }

  private admissionRequest(): AdmissionRequest {
    return { taskId: this.input.taskId, pool: this.input.runtime.pool, priority: this.input.priority, needs: this.input.requirements };
  }

  private setStatus(status: TaskState['status']): void {
    this.state.status = status;
    upsertSearchAttributes([{ key: OpsStatus, value: status }]);
  }

  private async record(status: TaskStatus, fields: Partial<LedgerEntry> = {}): Promise<void> {
    this.seq += 1;
    this.lastRecorded = status;
    await recordDecision({
      taskId: this.input.taskId,
      runId: workflowInfo().runId,
      seq: this.seq,
      status,
      action: this.input.action,
      services: this.input.services,
      actor: this.input.requestedBy ?? 'opsledger',
      ...fields,
    });
  }
}

function by(cmd: OperatorCommand | undefined): string {
  return cmd?.by ?? 'temporal-cli';
}
