/**
 * The error vocabulary: one class per failure class, each a failure that retrying the same call
 * cannot fix. The API maps each once to problem+json (src/api/problem.ts); activities turn them
 * into non-retryable ApplicationFailures.
 */
export abstract class OpsError extends Error {
  abstract readonly status: number;
  abstract readonly title: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export type FieldIssue = { field: string; message: string };

export class ValidationError extends OpsError {
  readonly status = 400;
  readonly title = 'Invalid request';
  constructor(readonly issues: FieldIssue[]) {
    super(issues.map((i) => `${i.field}: ${i.message}`).join('; '));
  }
}

export class PlaybookNotFoundError extends OpsError {
  readonly status = 400;
  readonly title = 'Playbook not found';
}

/** A task's sealed secrets cannot be opened where it runs (no key, or another key). */
export class SecretsUnavailableError extends OpsError {
  readonly status = 500;
  readonly title = 'Secrets unavailable';
}

export class NotFoundError extends OpsError {
  readonly status = 404;
  readonly title = 'Not found';
}

export class InvalidTransitionError extends OpsError {
  readonly status = 409;
  readonly title = 'Invalid transition';
}

export class UnauthorizedError extends OpsError {
  readonly status = 401;
  readonly title = 'Unauthorized';
}

export class ForbiddenError extends OpsError {
  readonly status = 403;
  readonly title = 'Forbidden';
}

/** A client that went over a rate limit; `Retry-After` says when it may try again. */
export class TooManyRequestsError extends OpsError {
  readonly status = 429;
  readonly title = 'Too many requests';
}

/**
 * A row differs from the one already recorded under its (taskId, runId, seq): retrying cannot
 * help, and skipping it would lose what happened. The chain trigger refuses it
 * (tasks_chain_append, sql/001_ledger_chain.sql).
 */
export class LedgerConflictError extends OpsError {
  readonly status = 409;
  readonly title = 'Ledger conflict';
}

/** A task id submitted again with another body: the id already names a different task. */
export class TaskConflictError extends OpsError {
  readonly status = 409;
  readonly title = 'Task id already used';
}

/** A task no live agent of its pool could take even idle: its needs exceed every agent's totals. */
export class NoAgentCanFitError extends OpsError {
  readonly status = 422;
  readonly title = 'No agent can ever fit the task';
}
