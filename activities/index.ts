import { ApplicationFailure, Context } from '@temporalio/activity';
import type { AdmissionRepository } from '../src/admission/repository';
import type { LedgerRepository } from '../src/ledger/repository';
import { OpsError, SecretsUnavailableError } from '../src/errors';
import { rowOfRecord } from './actorOfRecord';
import { unsealSecrets } from '../src/secrets';
import { dispatchedFields } from '../contracts/dispatchedRow';
import type { AdmissionAnswer, AdmissionQuestion, AdmissionRequest, LedgerEntry, PlaybookProgress, PlaybookRun } from '../contracts';
import { createAdmissionActivities } from './admission';
import type { PlaybookRequest, PlaybookRunner } from './ansibleRunner';

export interface ActivityDeps {
  ledger: LedgerRepository;
  admission: AdmissionRepository;
  runner: PlaybookRunner;
  playbookTimeoutS: number;
  /** Opens the secret variables the API sealed; absent, a task carrying secrets cannot run here. */
  secretKey?: string;
}

const HEARTBEAT_EVERY_MS = 2000;

/** Activities get their dependencies here, so tests can hand in real services without globals. */
export function createActivities(deps: ActivityDeps) {
  const recordDecision = async (entry: LedgerEntry): Promise<void> => {
    const row = rowOfRecord(entry, deps.secretKey);
    await nonRetryableWhereHopeless(() => deps.ledger.append(row));
  };

  /** Estimated duration: the plan's, else the median of past runs of the same intent. */
  const estimateDuration = async (task: DurationQuestion): Promise<DurationEstimate> => {
    if (task.planned !== undefined) return { seconds: task.planned, source: 'plan' };
    const median = await deps.ledger.medianDuration(task.action, task.services);
    return median
      ? { seconds: Math.round(median.seconds * 1000) / 1000, source: `median of ${median.runs} past runs` }
      : { seconds: null, source: 'no plan estimate and no past runs' };
  };

  /** The `dispatched` row and the run's duration estimate in one call: the append is idempotent, the estimate a read. */
  const recordDispatched = async (entry: LedgerEntry, task: DurationQuestion): Promise<DurationEstimate> => {
    await recordDecision(entry);
    return estimateDuration(task);
  };

  return {
    ...createAdmissionActivities(deps.admission),
    recordDecision,
    estimateDuration,
    recordDispatched,

    /**
     * A task's first step: its `queued` row, its first admission and, admitted at once, its
     * `dispatched` row and estimate. Each part is safe to repeat (a row by its (taskId, runId, seq),
     * the admission by its kept answer), so a retried step, or one run again after its workflow
     * task was lost, leaves the same rows and gives the same answer.
     */
    async enterTask(first: FirstStep): Promise<FirstStepResult> {
      await recordDecision(first.queued);
      const answer = await deps.admission.admitOnce(first.request, first.question);
      if (!answer.admitted) return { answer };
      const estimate = await recordDispatched({ ...first.dispatched, ...dispatchedFields(answer, 1) }, first.task);
      return { answer, estimate };
    },

    /**
     * The final row and the release of what the task held in admission, in one call: each of the
     * two is safe to repeat (the row by its (taskId, runId, seq), the release by deleting what is
     * there), so a retried call leaves the same rows behind.
     */
    async recordFinalDecision(entry: LedgerEntry): Promise<void> {
      await recordDecision(entry);
      await deps.admission.ended(entry.taskId);
    },

    async runPlaybook(
      request: Omit<PlaybookRequest, 'timeoutS' | 'secretVars'> & { sealedSecrets: string | null },
    ): Promise<PlaybookRun> {
      const ctx = Context.current();
      const { sealedSecrets, ...rest } = request;
      const secretVars = await nonRetryableWhereHopeless(async () => openSecrets(sealedSecrets, deps.secretKey, request.taskId));
      let progress: PlaybookProgress = { stepsDone: 0 };
      // Heartbeats carry progress and are how a cancellation reaches a running playbook. A change
      // of progress waits for the next beat: the SDK sends an activity's first heartbeat at once,
      // so beating on each change cost every run, a short one too, a server write, and readers
      // saw progress no sooner than every 2 s either way (the throttle).
      const beat = setInterval(() => ctx.heartbeat(progress), HEARTBEAT_EVERY_MS);
      try {
        const run = await nonRetryableWhereHopeless(() =>
          deps.runner.run(
            { ...rest, secretVars, timeoutS: deps.playbookTimeoutS },
            {
              signal: ctx.cancellationSignal,
              onProgress: (p) => {
                progress = p;
                ctx.log.info('playbook progress', { taskId: request.taskId, ...p });
              },
            },
          ),
        );
        if (ctx.cancellationSignal.aborted) await ctx.cancelled;
        return run;
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

export type DurationEstimate = { seconds: number | null; source: string };

/** What a task's first step writes and asks; `dispatched` is the row's common part, should it be admitted. */
export type FirstStep = {
  queued: LedgerEntry;
  request: AdmissionRequest;
  question: AdmissionQuestion;
  dispatched: Omit<LedgerEntry, 'agent' | 'outcome'>;
  task: DurationQuestion;
};

/** The first admission's answer and, admitted, the estimate of the run its `dispatched` row begins. */
export type FirstStepResult = { answer: AdmissionAnswer; estimate?: DurationEstimate };

/** What the estimate is asked about: the intent (action and services) and the plan's own figure. */
export type DurationQuestion = { action: string; services: string[]; planned?: number };

async function openSecrets(sealed: string | null, secretKey: string | undefined, taskId: string): Promise<Record<string, string>> {
  if (sealed === null) return {};
  if (!secretKey) throw new SecretsUnavailableError('this task carries secretVars but the worker has no OPSLEDGER_SECRET_KEY');
  try {
    return unsealSecrets(sealed, secretKey, taskId);
  } catch (err) {
    throw new SecretsUnavailableError((err as Error).message);
  }
}

async function nonRetryableWhereHopeless<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof OpsError) {
      throw ApplicationFailure.create({ message: err.message, type: err.name, nonRetryable: true, cause: err });
    }
    throw err;
  }
}
