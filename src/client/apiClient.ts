import {
  isFinalStatus,
  type AuditPage,
  type DispatchState,
  type DurationReport,
  type FailureSummary,
  type LiveTask,
  type OperatorCommandName,
  type OverrideCommand,
  type PauseQueue,
  type SubmitTaskRequest,
  type SubmitTaskResponse,
  type TaskState,
} from '../../contracts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; errors?: { field: string; message: string }[] },
  ) {
    const fields = problem.errors?.map((e) => `${e.field}: ${e.message}`).join('; ');
    super(`${status} ${problem.title ?? 'error'}${problem.detail ? `: ${problem.detail}` : ''}${fields && !problem.detail?.includes(fields) ? ` (${fields})` : ''}`);
    this.name = 'ApiError';
  }
}

/**
 * The typed client an orchestrator (or the CLI) uses against the REST API:
 * `const ops = createApiClient({ baseUrl, token }); await ops.submitAndWait({...})`.
 */
export function createApiClient({ baseUrl, token }: { baseUrl: string; token?: string }) {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(new URL(path, baseUrl), {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new ApiError(res.status, json ?? {});
    return json as T;
  };

  const client = {
    call,
    submit: (request: SubmitTaskRequest) => call<SubmitTaskResponse>('POST', '/api/v1/tasks', request),
    /** The live state; with `waitS`, once the task changes state or after that many seconds (at once if it ended). */
    state: (taskId: string, waitS?: number) =>
      call<LiveTask>('GET', `/api/v1/tasks/${encodeURIComponent(taskId)}${waitS === undefined ? '' : `?wait=${waitS}s`}`),
    command: (taskId: string, name: OperatorCommandName, body: OverrideCommand = {}) =>
      call<TaskState>('POST', `/api/v1/tasks/${encodeURIComponent(taskId)}/${name}`, body),
    /** One page of ledger rows; `filters` are GET /api/v1/audit's query parameters, `cursor` included. */
    audit: (filters: URLSearchParams) => call<AuditPage>('GET', `/api/v1/audit?${filters}`),
    /** One page of failure rows; `filters` are GET /api/v1/audit/failures' query parameters. */
    failures: (filters: URLSearchParams) => call<AuditPage>('GET', `/api/v1/audit/failures?${filters}`),
    failureSummary: (query: URLSearchParams) => call<FailureSummary>('GET', `/api/v1/audit/failures/summary?${query}`),
    durations: (query: URLSearchParams) => call<DurationReport>('GET', `/api/v1/audit/durations?${query}`),
    queue: () => call<PauseQueue>('GET', '/api/v1/pause-queue'),
    dispatchHold: (held: boolean, by?: string) =>
      call<DispatchState>('POST', `/api/v1/dispatch/${held ? 'hold' : 'release'}`, by ? { by } : {}),

    /**
     * Follows the live state until the task ends, calling `onChange` whenever what it shows changes.
     * After the first read each call waits on the API for the task's next change (no polling), up
     * to `waitS`; a running playbook's progress is no change of state, so `progressEveryS` (the
     * CLI's) reads it that often while it runs. A final status is shown only once the final row is
     * in the ledger, so the trail read next has it.
     */
    async follow(
      taskId: string,
      onChange: (state: LiveTask) => void = () => undefined,
      { waitS = 30, progressEveryS }: { waitS?: number; progressEveryS?: number } = {},
    ): Promise<LiveTask> {
      let last = '';
      let state = await client.state(taskId);
      for (;;) {
        const shown = JSON.stringify([state.status, state.waiting, state.progress?.task, state.agent]);
        if (shown !== last) {
          last = shown;
          onChange(state);
        }
        if (isFinalStatus(state.status)) return state;
        state = await client.state(taskId, state.status === 'running' && progressEveryS ? Math.min(progressEveryS, waitS) : waitS);
      }
    },

    /**
     * Submits and resolves with the final state. Idempotent by taskId: the same body again is the
     * same task; another body under that taskId is refused (ApiError 409).
     */
    async submitAndWait(request: SubmitTaskRequest, onChange?: (state: LiveTask) => void): Promise<LiveTask> {
      const { taskId } = await client.submit(request);
      return client.follow(taskId, onChange);
    },
  };
  return client;
}

export type ApiClient = ReturnType<typeof createApiClient>;
