import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  currentUpdateInfo,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type { Activities, DurationEstimate, DurationQuestion } from '../activities';
import type {
  ActorClaim,
  Admission,
  AdmissionAnswer,
  AdmissionQuestion,
  AdmissionRequest,
  CapacityGrant,
  FailureClass,
  Json,
  LedgerEntry,
  OperatorCommandInput,
  OverrideCommandInput,
  PlaybookRun,
  RunResult,
  TaskState,
  TaskStatus,
  TaskWorkflowInput,
} from '../contracts';
import { checkCommand, THROUGH_TEMPORAL } from '../contracts/commandRules';
import { dispatchedFields } from '../contracts/dispatchedRow';
import { inferIntents } from '../contracts/intent';
import { OpsAgent, OpsStatus } from '../contracts/searchAttributes';
import { activityFailureClass, classifyRun, failureMessage } from './failureClasses';
import { outcomeOf, planOf } from './ledgerPayloads';
import { cancelUpdate, capacityGrantedSignal, overrideUpdate, pauseUpdate, resumeUpdate, stateQuery } from './messages';

/** The steps that only touch PostgreSQL: the ledger appends, admission, holds, the estimate, the finish. */
const POSTGRES_STEPS: Pick<ActivityOptions, 'startToCloseTimeout' | 'retry'> = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
};

/** Each step a round trip through the server: how runs that began before the patch go on. */
const remoteSteps: PostgresSteps = proxyActivities<Activities>(POSTGRES_STEPS);

/**
 * Each step run by the worker inside the workflow task, one marker in history. A local activity
 * retried, or run again after a crash lost its workflow task, repeats what it did, so only steps
 * whose effect follows from history alone run locally: the ledger appends (a row by its (taskId,
 * runId, seq)), the estimate (a read, kept only once its workflow task completes), the finish, and
 * admission asked through `admitOnce`, which keeps its answer per question. A decision that an
 * operator's Update asks for (hold, release, override) stays a round trip: an Update lost with its
 * workflow task need not come again, so its effect must not be written before history has it.
 * The soak showed why an answer must not change: a first run recorded `resumed` at seq 2 before
 * its workflow task was lost; run again, admitted at once, it found seq 2 taken by that row, and
 * the workflow failed with no final row.
 */
const local = proxyLocalActivities<Activities>(POSTGRES_STEPS);
// Named one by one: an activity proxy has no own keys to spread.
const localSteps: PostgresSteps = {
  recordDecision: local.recordDecision,
  recordDispatched: local.recordDispatched,
  recordFinalDecision: local.recordFinalDecision,
  estimateDuration: local.estimateDuration,
  finishTask: local.finishTask,
  admit: remoteSteps.admit,
  admitOnce: local.admitOnce,
  holdTask: remoteSteps.holdTask,
  releaseHold: remoteSteps.releaseHold,
  overrideAdmission: remoteSteps.overrideAdmission,
};

type PostgresSteps = Pick<
  Activities,
  | 'recordDecision'
  | 'recordDispatched'
  | 'recordFinalDecision'
  | 'estimateDuration'
  | 'finishTask'
  | 'admit'
  | 'admitOnce'
  | 'holdTask'
  | 'releaseHold'
  | 'overrideAdmission'
>;

/** Runs started since this patch take their PostgreSQL steps locally and upsert once per transition. */
export const LOCAL_POSTGRES_STEPS_PATCH = 'local-postgres-steps';

/**
 * Runs started since this patch ask admission locally, each question answered once (`admitOnce`),
 * and take every step of LOCAL_POSTGRES_STEPS_PATCH locally as well.
 */
export const LOCAL_ADMISSION_PATCH = 'local-admission';

/**
 * Runs started since this patch write the `queued` row, ask admission and, admitted at once, write
 * the `dispatched` row in one local step (`enterTask`), and take every step of LOCAL_ADMISSION_PATCH
 * as well.
 */
export const ONE_FIRST_STEP_PATCH = 'one-first-step';

export interface TaskResult {
  taskId: string;
  status: TaskStatus;
  failureClass?: FailureClass;
}

/** Who caused a row: the actor of record, and who asks in the caller's own words (a note). */
type Caller = { actor: string; by?: string; claim?: ActorClaim };

type Command =
  | { kind: 'hold'; caller: Caller; reason?: string }
  | { kind: 'resume'; caller: Caller }
  | { kind: 'override'; caller: Caller; agentId?: string }
  | { kind: 'cancel'; caller: Caller; reason?: string };

/**
 * Where the task runs, and who sent it there (the `dispatched` row's actor); `recorded` is the
 * run's estimate when the first step has already written the `dispatched` row.
 */
type Dispatch = { grant: CapacityGrant; caller: Caller; recorded?: DurationEstimate };

/** Why admission let a task wait. */
type Waiting = Extract<AdmissionAnswer, { admitted: false }>;

type RowFields = Partial<LedgerEntry> & Pick<LedgerEntry, 'actor'>;

/** An operator command that is valid but cannot be carried out now (an override with no live agent). */
class CommandRefused extends Error {}

class TaskCancelled {
  constructor(
    readonly caller: Caller,
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
  /** Why a command, by its place in submission order, could not be carried out. */
  private readonly refusals = new Map<number, string>();
  /** Whether to ask admission (which holds the reservations) again: on entering it, a grant signal or a resume. */
  private askAdmission = false;
  private held = false;
  private phase: 'admission' | 'execution' | 'final' = 'admission';
  private executionScope?: CancellationScope;
  private cancelledBy?: TaskCancelled;
  private lastRecorded?: TaskStatus;
  /** Why the previous run was lost to infrastructure, for the next `dispatched` row. */
  private lostRun?: string;
  /** When the current wait for dispatch runs out (epoch ms); undefined when unbounded. */
  private waitDeadline?: number;
  /** Whether this run takes its PostgreSQL steps locally; decided once, at its start. */
  private local = false;
  private steps: PostgresSteps = remoteSteps;
  /** Whether this run asks admission locally; decided once, at its start. */
  private localAdmission = false;
  /** Whether this run's first step also asks admission; decided once, at its start. */
  private oneFirstStep = false;
  /** Admission questions asked so far, each with its number. */
  private asks = 0;
  /** The final row's step already freed the reservation and queue row. */
  private released = false;

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
    setHandler(stateQuery, () => this.liveState());
    // The signal's grant is never dispatched on as sent: a copy that outlived its reservation (an
    // operator command raced it, or its run was lost) or one sent by anyone who can reach Temporal
    // must not place a task that admission has not reserved for.
    setHandler(capacityGrantedSignal, () => {
      this.askAdmission = true;
    });
    setHandler(pauseUpdate, (cmd?: OperatorCommandInput) => this.submit({ kind: 'hold', caller: callerOf(cmd), reason: cmd?.reason }), {
      validator: (cmd?: OperatorCommandInput) => {
        checkCommand('pause', cmd);
        this.mustBeWaiting('pause');
        if (this.held) throw new Error(`task ${this.input.taskId} is already held`);
      },
    });
    setHandler(resumeUpdate, (cmd?: OperatorCommandInput) => this.submit({ kind: 'resume', caller: callerOf(cmd) }), {
      validator: (cmd?: OperatorCommandInput) => {
        checkCommand('resume', cmd);
        this.mustBeWaiting('resume');
        if (!this.held) throw new Error(`task ${this.input.taskId} is not held; only a held task can be resumed`);
      },
    });
    setHandler(overrideUpdate, (cmd?: OverrideCommandInput) => this.submit({ kind: 'override', caller: callerOf(cmd), agentId: cmd?.agentId }), {
      validator: (cmd?: OverrideCommandInput) => {
        checkCommand('override', cmd);
        this.mustBeWaiting('override');
      },
    });
    setHandler(cancelUpdate, (cmd?: OperatorCommandInput) => this.submitCancel({ kind: 'cancel', caller: callerOf(cmd), reason: cmd?.reason }), {
      validator: (cmd?: OperatorCommandInput) => {
        checkCommand('cancel', cmd);
        if (this.phase === 'final') throw new Error(`task ${this.input.taskId} has already ended (${this.state.status})`);
        if (this.cancelledBy) throw new Error(`task ${this.input.taskId} is already being cancelled`);
      },
    });
  }

  async execute(): Promise<TaskResult> {
    // A new run records only the newest patch: each patch costs a marker and an upsert in history.
    // A run that began between two patches has the older marker alone, and replays with it.
    this.oneFirstStep = patched(ONE_FIRST_STEP_PATCH);
    this.localAdmission = this.oneFirstStep || patched(LOCAL_ADMISSION_PATCH);
    this.local = this.localAdmission || patched(LOCAL_POSTGRES_STEPS_PATCH);
    if (this.local) this.steps = localSteps;
    const { requestedBy } = this.input;
    try {
      let entered = await this.enter({
        ...attributed(this.submitter()),
        plan: planOf(this.input),
        ...(requestedBy === undefined ? {} : { outcome: { requestedBy } }),
      });
      for (;;) {
        const next = entered && 'grant' in entered ? entered : await this.waitForAgent(entered);
        entered = undefined;
        if (!('grant' in next)) return next;
        const outcome = await this.dispatch(next);
        if (outcome) return outcome;
      }
    } catch (err) {
      if (err instanceof TaskCancelled || isCancellation(err)) {
        const { caller, reason } = err instanceof TaskCancelled ? err : new TaskCancelled({ actor: THROUGH_TEMPORAL }, 'workflow cancelled');
        return await CancellationScope.nonCancellable(() =>
          this.finish('cancelled', {
            failureClass: 'cancelled',
            ...attributed(caller),
            ...(caller.by === undefined ? {} : { outcome: said(caller) }),
            failure: { message: reason ?? `cancelled by ${caller.actor}` },
          }),
        );
      }
      throw err;
    } finally {
      if (!this.released) await CancellationScope.nonCancellable(() => this.steps.finishTask(this.input.taskId));
      this.phase = 'final';
      this.drainCommands();
    }
  }

  /**
   * The `queued` row. Since ONE_FIRST_STEP_PATCH one local step also asks admission and, admitted
   * at once, writes the `dispatched` row: one step in the task's first workflow task instead of
   * three. An Update that came with the start is carried out before admission is asked, as it
   * always was, so then the row goes alone. Not cancellable: the step may write the `dispatched`
   * row at the seq after `queued`, which a cancel recorded meanwhile would take.
   */
  private async enter(queued: RowFields): Promise<Dispatch | Waiting | undefined> {
    if (!this.oneFirstStep || this.commands.length > 0) {
      await this.record('queued', queued);
      return undefined;
    }
    const queuedRow = this.nextRow('queued', queued);
    const dispatchedRow = this.rowAt(this.seq + 1, 'dispatched', { actor: 'dispatcher' });
    const { answer, estimate } = await CancellationScope.nonCancellable(() =>
      local.enterTask({
        queued: queuedRow,
        request: this.admissionRequest(),
        question: this.nextQuestion(),
        dispatched: dispatchedRow,
        task: this.durationQuestion(),
      }),
    );
    if (!answer.admitted) return answer;
    this.seq = dispatchedRow.seq;
    this.lastRecorded = 'dispatched';
    return { grant: answer, caller: { actor: 'dispatcher' }, recorded: estimate };
  }

  /**
   * Waits before dispatch, in queue order, until admitted, overridden or cancelled. Only admission
   * (or an override, which reserves) places the task: it dispatches where a reservation stands.
   * A wait lasts at most maxWaitS, counted from when it began (submit, or a run lost to
   * infrastructure); the clock does not fire while an operator holds the task, and a task resumed
   * past its deadline is asked about once more, then fails `resource_constraint`.
   */
  private async waitForAgent(firstAnswer?: Waiting): Promise<Dispatch | TaskResult> {
    // Back from a lost run too: whatever was granted before is no reason to dispatch now.
    this.askAdmission = true;
    let recordedWait: string | undefined;
    const maxWaitS = this.input.maxWaitS ?? this.input.runtime.maxWaitS;
    const waitingSince = Date.now();
    const deadline = maxWaitS === undefined ? undefined : waitingSince + maxWaitS * 1000;
    this.waitDeadline = deadline;
    let lastShortfall: string | null = null;
    for (;;) {
      for (let cmd = this.commands.shift(); cmd; cmd = this.commands.shift()) {
        const dispatch = await this.applyOrRefuse(cmd, this.commandsDone + 1);
        this.commandsDone += 1;
        if (cmd.kind === 'resume') recordedWait = undefined;
        if (dispatch) return dispatch;
      }
      if (this.askAdmission && !this.held) {
        this.askAdmission = false;
        const admission = firstAnswer ?? (await this.askAdmissionOnce());
        if (admission.admitted) return this.resumedByDispatcher(admission);
        lastShortfall = admission.shortfall ?? lastShortfall ?? admission.reason;
        const waitKey = `${admission.reason}|${admission.shortfall}`;
        if (waitKey !== recordedWait) {
          recordedWait = waitKey;
          await this.record('paused', {
            actor: 'opsledger',
            outcome: { reason: admission.reason, shortfall: admission.shortfall, position: admission.position },
          });
        }
        this.wait(admission);
        // A kept answer is as old as the question: whatever freed room since woke a workflow task
        // that was lost, so the task asks once more instead of waiting for a wake-up already spent.
        if (admission.replayed) this.askAdmission = true;
      }
      // Past the first pass the first step's answer is stale: a hold carried out before it, then a resume, asks anew.
      firstAnswer = undefined;
      const woken = () => this.commands.length > 0 || (this.askAdmission && !this.held);
      if (deadline === undefined || this.held) {
        await condition(woken);
      } else if (Date.now() >= deadline) {
        return this.waitExpired(lastShortfall, Math.round((Date.now() - waitingSince) / 1000), maxWaitS!);
      } else {
        await condition(woken, deadline - Date.now());
      }
    }
  }

  /** Asks admission: since the patch a local step answered once per question, else a round trip. */
  private askAdmissionOnce(): Promise<AdmissionAnswer> {
    if (!this.localAdmission) return this.steps.admit(this.admissionRequest());
    return this.steps.admitOnce(this.admissionRequest(), this.nextQuestion());
  }

  /** The next admission question of this run: its answer is kept under this number. */
  private nextQuestion(): AdmissionQuestion {
    this.asks += 1;
    return { runId: workflowInfo().runId, ask: this.asks };
  }

  /**
   * The wait ran out: one final `failed` row; leaving the pause queue is execute()'s finishTask.
   * Since admission is asked locally the row goes as a round trip: the final row's step forgets the
   * task's admission answers, and the workflow task that writes it may be the one that asked last
   * (a resume past the deadline asks once more, then fails). Were that task lost after a local final
   * row, its next attempt would ask again with the answer gone; a round trip completes it first.
   */
  private waitExpired(lastShortfall: string | null, waitedS: number, maxWaitS: number): Promise<TaskResult> {
    return this.finish('failed', {
      failureClass: 'resource_constraint',
      failure: {
        message: `waited ${waitedS}s for dispatch (maxWaitS ${maxWaitS}) without an agent it fits: ${lastShortfall ?? 'no admission answer'}`,
        context: { lastShortfall, waitedS, maxWaitS },
      },
    }, undefined, { roundTrip: this.localAdmission });
  }

  /** A task that was recorded as waiting gets a `resumed` row; one already resumed by an operator does not. */
  private async resumedByDispatcher(grant: CapacityGrant): Promise<Dispatch> {
    if (this.lastRecorded === 'paused') {
      await this.record('resumed', { actor: 'dispatcher', outcome: { grantedAgent: grant.agentId } });
    }
    return { grant, caller: { actor: 'dispatcher' } };
  }

  /** Who submitted: the API's principal, signed for this task's submit, or Temporal. */
  private submitter(): Caller {
    const { principal, principalProof } = this.input;
    if (principal === undefined) return { actor: THROUGH_TEMPORAL };
    return { actor: principal, claim: { act: 'submit', proof: principalProof ?? null } };
  }

  private async applyWaitingCommand(cmd: Command): Promise<Dispatch | undefined> {
    const { actor } = cmd.caller;
    switch (cmd.kind) {
      case 'hold':
        await this.steps.holdTask(this.admissionRequest(), actor);
        this.held = true;
        await this.record('paused', { ...attributed(cmd.caller), outcome: { reason: 'operator_hold', note: cmd.reason ?? null, ...said(cmd.caller) } });
        this.state.waiting = { reason: 'operator_hold', shortfall: null, heldBy: actor };
        this.setStatus('paused');
        return undefined;
      case 'resume':
        await this.steps.releaseHold(this.input.taskId);
        this.held = false;
        this.askAdmission = true;
        await this.record('resumed', { ...attributed(cmd.caller), outcome: { from: 'operator_hold', ...said(cmd.caller) } });
        this.state.waiting = { reason: 'capacity', shortfall: null };
        return undefined;
      case 'override': {
        const grant = await this.steps.overrideAdmission(this.admissionRequest(), cmd.agentId);
        if (!grant) {
          throw new CommandRefused(
            cmd.agentId ? `agent ${cmd.agentId} is not live in pool ${this.input.runtime.pool}` : 'no live agent to override onto',
          );
        }
        this.held = false;
        await this.record('resumed', { ...attributed(cmd.caller), outcome: { override: true, grantedAgent: grant.agentId, ...said(cmd.caller) } });
        return { grant, caller: cmd.caller };
      }
      case 'cancel':
        throw new TaskCancelled(cmd.caller, cmd.reason);
    }
  }

  /** Runs the playbook on the granted agent; undefined means "lost to infrastructure, admit again". */
  private async dispatch(next: Dispatch): Promise<TaskResult | undefined> {
    const { grant } = next;
    this.phase = 'execution';
    this.state.attempt += 1;
    const estimate = await this.recordDispatched(next);

    const { runPlaybook } = proxyActivities<Activities>({
      taskQueue: grant.taskQueue,
      // Only that agent polls its queue: if it is gone, fail fast and admit again elsewhere.
      scheduleToStartTimeout: `${this.input.runtime.scheduleToStartTimeoutS} seconds`,
      startToCloseTimeout: '24 hours',
      heartbeatTimeout: `${this.input.runtime.heartbeatTimeoutS} seconds`,
      retry: { maximumAttempts: 1 },
      cancellationType: 'WAIT_CANCELLATION_COMPLETED',
    });
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
        await this.steps.finishTask(this.input.taskId);
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
    const { failureClass, resourceState } = classifyRun(run, this.input.requirements);
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
        ? {
            message: run.keyMessages.join('\n') || `ansible-playbook exited with ${run.exitCode}`,
            context: { agent: grant.agentId, attempt: this.state.attempt },
            ...(resourceState ? { resourceState: resourceState as unknown as Json } : {}),
          }
        : undefined,
      failureClass,
    }, run.result);
  }

  /**
   * The `dispatched` row, then running, with the duration estimate in between. Since the patch one
   * local step writes the row and estimates, so no workflow task ends before `running` and one
   * upsert says both the agent and `running`; a first step that admitted has written it already.
   */
  private async recordDispatched({ grant, caller, recorded }: Dispatch): Promise<DurationEstimate> {
    const fields = () => ({ ...dispatchedFields(grant, this.state.attempt, this.lostRun), ...attributed(caller) });
    const agent: SearchAttributeUpdatePair = { key: OpsAgent, value: grant.agentId };
    if (!this.local) {
      await this.record('dispatched', fields());
      this.dispatchedTo(grant.agentId);
      upsertSearchAttributes([agent]);
      this.setStatus('dispatched');
      const estimate = await this.steps.estimateDuration(this.durationQuestion());
      this.setStatus('running');
      return estimate;
    }
    const estimate = recorded ?? (await this.record('dispatched', fields(), (entry) => this.steps.recordDispatched(entry, this.durationQuestion())));
    this.dispatchedTo(grant.agentId);
    this.setStatus('running', [agent]);
    return estimate;
  }

  private dispatchedTo(agentId: string): void {
    this.state.agent = agentId;
    this.state.waiting = undefined;
  }

  private async finish(status: TaskStatus, fields: Partial<LedgerEntry>, result?: RunResult, how = { roundTrip: false }): Promise<TaskResult> {
    // Since the patch the final row's step also frees the reservation, one step instead of two. A
    // cancel comes by Update: were its workflow task lost after a local final row, an Update not
    // sent again would leave that row behind a task that goes on; as a round trip it is written
    // only once the cancel is in history.
    const finalStep = status === 'cancelled' || how.roundTrip ? remoteSteps : this.steps;
    await this.record(status, { actor: 'opsledger', ...fields }, (entry) =>
      this.local ? finalStep.recordFinalDecision(entry) : finalStep.recordDecision(entry),
    );
    this.released = this.local;
    // Only now may the live state, the Update answers and OpsStatus call the task final: an
    // orchestrator that reads the trail on seeing it must find the final row there.
    this.state.result = result;
    this.state.failureClass = fields.failureClass;
    this.state.waiting = undefined;
    this.setStatus(status);
    this.phase = 'final';
    return { taskId: this.input.taskId, status, failureClass: fields.failureClass };
  }

  private async submit(cmd: Command): Promise<TaskState> {
    this.commandsSubmitted += 1;
    const mine = this.commandsSubmitted;
    this.commands.push(cmd);
    await condition(() => this.commandsDone >= mine);
    const refusal = this.refusals.get(mine);
    if (refusal !== undefined) {
      this.refusals.delete(mine);
      // Fails this Update only: the task goes on waiting, and its caller learns why.
      throw ApplicationFailure.nonRetryable(refusal, 'CommandRefused');
    }
    return this.snapshot();
  }

  /** A command that cannot be carried out now is answered with why, instead of ending the task. */
  private async applyOrRefuse(cmd: Command, ticket: number): Promise<Dispatch | undefined> {
    try {
      return await this.applyWaitingCommand(cmd);
    } catch (err) {
      if (!(err instanceof CommandRefused)) throw err;
      this.refusals.set(ticket, err.message);
      return undefined;
    }
  }

  private async submitCancel(cmd: Extract<Command, { kind: 'cancel' }>): Promise<TaskState> {
    if (this.phase === 'execution') {
      this.cancelledBy = new TaskCancelled(cmd.caller, cmd.reason);
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

  /** The state as the query answers it: a wait shows when it runs out. */
  private liveState(): TaskState {
    if (!this.state.waiting || this.waitDeadline === undefined) return this.state;
    return { ...this.state, waiting: { ...this.state.waiting, deadline: new Date(this.waitDeadline).toISOString() } };
  }

  private wait(admission: Extract<Admission, { admitted: false }>): void {
    this.state.waiting = { reason: admission.reason, shortfall: admission.shortfall, position: admission.position };
    this.setStatus('paused');
  }

  private durationQuestion(): DurationQuestion {
    return { action: this.input.action, services: this.input.services, planned: this.input.plan?.estimatedDurationS };
  }

  private admissionRequest(): AdmissionRequest {
    return { taskId: this.input.taskId, pool: this.input.runtime.pool, priority: this.input.priority, needs: this.input.requirements };
  }

  /** Since the patch a status the task already has is not upserted again (a hold while waiting). */
  private setStatus(status: TaskState['status'], also: SearchAttributeUpdatePair[] = []): void {
    const unchanged = this.state.status === status && also.length === 0;
    this.state.status = status;
    if (this.local && unchanged) return;
    upsertSearchAttributes([{ key: OpsStatus, value: status }, ...also]);
  }

  /** Appends the next row of this run, through `step` (the plain append unless one does more with it). */
  private async record<T = void>(
    status: TaskStatus,
    fields: RowFields,
    step: (entry: LedgerEntry) => Promise<T> = (entry) => this.steps.recordDecision(entry) as Promise<T>,
  ): Promise<T> {
    return step(this.nextRow(status, fields));
  }

  /** The next row of this run, counted as recorded. */
  private nextRow(status: TaskStatus, fields: RowFields): LedgerEntry {
    this.seq += 1;
    this.lastRecorded = status;
    return this.rowAt(this.seq, status, fields);
  }

  private rowAt(seq: number, status: TaskStatus, fields: RowFields): LedgerEntry {
    return { taskId: this.input.taskId, runId: workflowInfo().runId, seq, status, action: this.input.action, services: this.input.services, ...fields };
  }
}

/**
 * The actor of record is the principal the API authenticated and added; a command without one came
 * straight through Temporal. What the caller wrote in `by` is only kept beside it.
 */
function callerOf(cmd: OperatorCommandInput | undefined): Caller {
  const by = cmd?.by === undefined ? {} : { by: cmd.by };
  if (cmd?.principal === undefined) return { actor: THROUGH_TEMPORAL, ...by };
  // The API signed the principal for this Update's id, which Temporal keeps unique per workflow.
  return { actor: cmd.principal, ...by, claim: { act: `update:${currentUpdateInfo()?.id ?? ''}`, proof: cmd.principalProof ?? null } };
}

/** The row's actor, and the claim the recording activity checks before the row is written. */
function attributed(caller: Caller): Pick<LedgerEntry, 'actor' | 'actorClaim'> {
  return caller.claim ? { actor: caller.actor, actorClaim: caller.claim } : { actor: caller.actor };
}

function said(caller: Caller): { by?: string } {
  return caller.by === undefined ? {} : { by: caller.by };
}
