import type { Json, PlaybookRun, TaskWorkflowInput } from '../contracts';

/** The `queued` row's plan: what was asked for, as the submitter described it. */
export function planOf(input: TaskWorkflowInput): Json {
  return {
    steps: input.plan?.steps ?? [],
    estimatedDurationS: input.plan?.estimatedDurationS ?? null,
    complexity: input.plan?.complexity ?? null,
    playbook: input.playbook,
    checkMode: input.checkMode,
    priority: input.priority,
    requirements: input.requirements,
  };
}

/** The final row's outcome: the playbook's summary, without its resource figures (kept apart). */
export function outcomeOf(run: PlaybookRun): Json {
  return {
    result: run.result,
    exitCode: run.exitCode,
    counts: { ...run.counts },
    keyMessages: run.keyMessages,
    steps: run.steps.map((s) => ({ ...s })),
    outputTail: run.outputTail,
  };
}
