import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { Router, type Response } from 'express';
import client from 'prom-client';
import { z } from 'zod';
import { cancelUpdate, overrideUpdate, pauseUpdate, resumeUpdate, stateQuery } from '../../../workflows/messages';
import {
  COMMAND_INPUT,
  isFinalStatus,
  LiveTask,
  OPERATOR_COMMANDS,
  PlaybookProgress,
  SubmitTaskRequest,
  SubmitTaskResponse,
  TaskId,
  TaskState,
  type OperatorCommandName,
  type Requirements,
  type TaskRuntime,
  type TaskWorkflowInput,
} from '../../../contracts';
import { TaskWaitQuery } from '../../../contracts/taskWait';
import type { Db } from '../../db/pool';
import { createTaskChanges, type TaskChanges } from '../../ledger/taskChanges';
import { InvalidTransitionError, NoAgentCanFitError, NotFoundError, UnauthorizedError, ValidationError } from '../../errors';
import { forTask } from '../../logger';
import { registry, tasksSubmitted } from '../../metrics';
import { signPrincipal } from '../../principalProof';
import { SecretKeyError, sealSecrets, unsealSecrets } from '../../secrets';
import { startTask, type StartOptions } from '../../temporal/client';
import { principalOf, requireRole } from '../auth';
import { problemResponse } from '../openapi';
import { parseOrThrow } from '../problem';

export type TasksRouterDeps = {
  temporal: Client;
  /** Where a waiting caller learns that its task changed: the ledger's append notices. */
  db: Db;
  /** Seals secretVars; without it, a task that carries secrets is refused. */
  secretKey?: string;
  runtime: TaskRuntime;
  playbooksDir: string;
  openapi: OpenAPIRegistry;
  /** Refuses at submit a task that no live agent of the pool could take even idle. */
  admission?: { neverFits(pool: string, needs: Requirements): Promise<string | null> };
};

const TaskIdParams = z.object({ taskId: TaskId });

/** Callers of GET /tasks/:id?wait that have their first read and hold for a change. */
export const taskWaiters = new client.Gauge({
  name: 'opsledger_task_waiters',
  help: 'Callers waiting on GET /tasks/:id?wait for their task to change.',
  registers: [registry],
});

const COMMANDS = {
  pause: { update: pauseUpdate, summary: 'Hold a waiting task: it keeps its place but is not resumed automatically.' },
  resume: { update: resumeUpdate, summary: 'Release an operator hold: the task waits for capacity again, in its old place.' },
  override: { update: overrideUpdate, summary: 'Dispatch a waiting task now, ignoring capacity.' },
  cancel: { update: cancelUpdate, summary: 'Cancel a task; a running playbook is killed.' },
} as const satisfies Record<OperatorCommandName, unknown>;

export function tasksRouter({ temporal, db, secretKey, runtime, playbooksDir, openapi, admission }: TasksRouterDeps): Router {
  const router = Router();
  const changes = createTaskChanges(db);
  const afterNotice = sharedReads();

  openapi.registerPath({
    method: 'post',
    path: '/api/v1/tasks',
    summary: 'Submit a task; the same taskId with the same body again answers the existing task, with another body 409.',
    description: 'The submitting token’s principal is the `queued` row’s actor; `requestedBy` is kept beside it as a note.',
    request: { body: { content: { 'application/json': { schema: SubmitTaskRequest } } } },
    responses: {
      202: { description: 'Accepted', content: { 'application/json': { schema: SubmitTaskResponse } } },
      200: { description: 'Already submitted, with this very body', content: { 'application/json': { schema: SubmitTaskResponse } } },
      400: problemResponse('Invalid task'),
      409: problemResponse('The taskId was submitted before with a different body'),
      422: problemResponse('No live agent of the pool could take the task even idle; the detail names the shortfall'),
    },
  });
  router.post('/tasks', requireRole('orchestrator'), async (req, res) => {
    const request = parseOrThrow(SubmitTaskRequest, req.body);
    assertPlaybookExists(playbooksDir, request.playbook);
    if (admission) {
      const shortfall = await admission.neverFits(runtime.pool, request.requirements);
      if (shortfall) throw new NoAgentCanFitError(`no live agent in pool ${runtime.pool} could ever take this task: ${shortfall}`);
    }
    const { secretVars, ...rest } = request;
    const taskId = request.taskId ?? `task-${crypto.randomUUID()}`;
    const input: TaskWorkflowInput = {
      ...rest,
      taskId,
      sealedSecrets: sealIfAny(secretVars, secretKey, taskId),
      runtime,
      ...vouchedPrincipal(secretKey, taskId, principalName(res), 'submit'),
    };
    const result = await startTask(temporal, input, { sameSecrets: opensTo(secretVars, secretKey, taskId) });
    tasksSubmitted.inc({ outcome: result.existing ? 'existing' : 'new' });
    forTask(input.taskId).info({ action: input.action, services: input.services, existing: result.existing }, 'task submitted');
    res
      .status(result.existing ? 200 : 202)
      .location(`/api/v1/tasks/${input.taskId}`)
      .json({
        taskId: result.taskId,
        runId: result.runId,
        existing: result.existing,
        links: { self: `/api/v1/tasks/${input.taskId}`, audit: `/api/v1/audit/tasks/${input.taskId}` },
      });
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/tasks/{taskId}',
    summary: 'Live state of a task from its workflow: waiting and why, running and the current ansible task, or how it ended.',
    description:
      'With `wait`, the answer is held until the task changes state (a row is appended to its trail) or the wait ends, ' +
      'and comes at once for a task that has ended: an orchestrator waits without polling.',
    request: { params: TaskIdParams, query: TaskWaitQuery },
    responses: {
      200: { description: 'Live state', content: { 'application/json': { schema: LiveTask } } },
      400: problemResponse('Invalid wait'),
      404: problemResponse('No such task'),
    },
  });
  router.get('/tasks/:taskId', requireRole('viewer'), async (req, res) => {
    const { taskId } = parseOrThrow(TaskIdParams, req.params);
    const { wait } = parseOrThrow(TaskWaitQuery, req.query);
    res.json(wait === undefined ? await liveTask(temporal, taskId) : await liveTaskAfterChange(temporal, changes, afterNotice, taskId, wait, res));
  });

  for (const name of OPERATOR_COMMANDS) {
    const command = COMMANDS[name];
    const body = COMMAND_INPUT[name];
    openapi.registerPath({
      method: 'post',
      path: `/api/v1/tasks/{taskId}/${name}`,
      summary: command.summary,
      request: { params: TaskIdParams, body: { content: { 'application/json': { schema: body } } } },
      responses: {
        200: { description: 'The task state after the command', content: { 'application/json': { schema: TaskState } } },
        404: problemResponse('No such task'),
        409: problemResponse('Not valid in the task’s current state'),
      },
    });
    router.post(`/tasks/:taskId/${name}`, requireRole('operator'), async (req, res) => {
      const { taskId } = parseOrThrow(TaskIdParams, req.params);
      const input = parseOrThrow(body, req.body ?? {});
      const principal = principalName(res);
      const updateId = crypto.randomUUID();
      const proven = vouchedPrincipal(secretKey, taskId, principal, `update:${updateId}`);
      const state = await executeCommand(temporal, taskId, () =>
        temporal.workflow.getHandle(taskId).executeUpdate(command.update, { args: [{ ...input, ...proven }], updateId }),
      );
      forTask(taskId).info({ command: name, principal, by: input.by }, 'operator command applied');
      res.json(state);
    });
  }

  return router;
}

/**
 * The principal, with the proof a worker checks before it records it as the actor (without the
 * secret key there is none, and the rows say the command came through Temporal).
 */
function vouchedPrincipal(secretKey: string | undefined, taskId: string, principal: string, act: string) {
  return { principal, ...(secretKey ? { principalProof: signPrincipal(secretKey, { taskId, principal, act }) } : {}) };
}

/** The actor of record: the principal its token authenticated, whatever the body says. */
function principalName(res: Response): string {
  const principal = principalOf(res);
  if (!principal) throw new UnauthorizedError('a bearer token is required');
  return principal.name;
}

/** Whether an existing task's sealed secretVars open, here and only in memory, to the ones asked for now. */
function opensTo(secretVars: Record<string, string>, secretKey: string | undefined, taskId: string): StartOptions['sameSecrets'] {
  if (!secretKey) return undefined;
  return (sealedBefore) => {
    try {
      return isDeepStrictEqual(unsealSecrets(sealedBefore, secretKey, taskId), secretVars);
    } catch (err) {
      if (err instanceof SecretKeyError) return false;
      throw err;
    }
  };
}

async function executeCommand<T>(temporal: Client, taskId: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new InvalidTransitionError(err.cause?.message ?? err.message);
    }
    if (err instanceof WorkflowNotFoundError) {
      const ended = await temporal.workflow
        .getHandle(taskId)
        .describe()
        .then((d) => d.status.name)
        .catch(() => undefined);
      if (ended) throw new InvalidTransitionError(`task ${taskId} has already ended (${ended})`);
      throw new NotFoundError(`no task ${taskId}`);
    }
    throw err;
  }
}

async function liveTask(temporal: Client, taskId: string): Promise<LiveTask> {
  const handle = temporal.workflow.getHandle(taskId);
  try {
    const [description, state] = await Promise.all([handle.describe(), handle.query(stateQuery)]);
    const progress = state.status === 'running' ? playbookProgress(description) : undefined;
    return { ...state, ...(progress ? { progress } : {}), workflow: { runId: description.runId, status: description.status.name } };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`no task ${taskId}`);
    throw err;
  }
}

/**
 * The state once the task's trail grows or `waitMs` passes; at once for an ended task. The wait
 * starts before the first read, so a row appended in between wakes it.
 */
async function liveTaskAfterChange(
  temporal: Client,
  changes: TaskChanges,
  afterNotice: SharedReads,
  taskId: string,
  waitMs: number,
  res: Response,
): Promise<LiveTask> {
  const change = await changes.next(taskId, waitMs);
  // A caller that hangs up stops waiting (the response closes before it is sent): abandoned calls hold nothing.
  const hungUp = () => change.cancel();
  res.on('close', hungUp);
  try {
    const now = await liveTask(temporal, taskId);
    if (now.workflow.status !== 'RUNNING') return now;
    taskWaiters.inc();
    const appended = await change.changed.finally(() => taskWaiters.dec());
    if (appended === undefined) return await liveTask(temporal, taskId);
    // Every caller one notice woke shares one read, begun after the notice: a thousand callers of
    // one task cost one read. The notice comes with the row's commit, a moment before the workflow
    // has taken in that its step returned: after a final row the read waits for the run to close.
    return await afterNotice(`${appended.notice}`, async () => {
      if (isFinalStatus(appended.status)) await closedWithin(temporal, taskId, FINAL_ROW_TO_CLOSE_MS);
      return liveTask(temporal, taskId);
    });
  } finally {
    change.cancel();
    res.off('close', hungUp);
  }
}

type SharedReads = (key: string, read: () => Promise<LiveTask>) => Promise<LiveTask>;

/** Callers asking under the same key while a read is in flight get that read's answer. */
function sharedReads(): SharedReads {
  const inFlight = new Map<string, Promise<LiveTask>>();
  return (key, read) => {
    const pending = inFlight.get(key);
    if (pending) return pending;
    const started = read().finally(() => inFlight.delete(key));
    inFlight.set(key, started);
    return started;
  };
}

// After its final row a run closes within its workflow task; this only bounds a worker that died then.
const FINAL_ROW_TO_CLOSE_MS = 10_000;

/** Waits (Temporal's own long-poll for the close event) until the run closes, or `ms` passes. */
async function closedWithin(temporal: Client, taskId: string, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = temporal.workflow.getHandle(taskId).result().then(() => undefined, () => undefined);
  await Promise.race([closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** The running playbook's last heartbeat (current play and task), kept by Temporal with the activity. */
function playbookProgress(description: WorkflowExecutionDescription): PlaybookProgress | undefined {
  const pending = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'runPlaybook');
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<PlaybookProgress>(payload) : undefined;
}

function sealIfAny(secretVars: Record<string, string>, secretKey: string | undefined, taskId: string): string | null {
  if (Object.keys(secretVars).length === 0) return null;
  if (!secretKey) {
    throw new ValidationError([
      { field: 'secretVars', message: 'this API has no OPSLEDGER_SECRET_KEY to seal secrets with; configure it on the API and workers' },
    ]);
  }
  return sealSecrets(secretVars, secretKey, taskId);
}

function assertPlaybookExists(playbooksDir: string, playbook: string): void {
  const file = path.resolve(playbooksDir, playbook);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new ValidationError([{ field: 'playbook', message: `${playbook} does not exist in the playbooks folder` }]);
  }
}
