import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Client } from '@temporalio/client';
import { Router } from 'express';
import { z } from 'zod';
import { stateQuery } from '../../../workflows';
import { NotFoundError, ValidationError } from '../../errors';
import { forTask } from '../../logger';
import { tasksSubmitted } from '../../metrics';
import { startTask } from '../../temporal/client';
import { SubmitTaskRequest, TaskId } from '../../tasks/schema';
import type { TaskSpec } from '../../../workflows/types';
import { parseOrThrow } from '../problem';
import { problemResponse } from '../openapi';

export type TasksRouterDeps = {
  temporal: Client;
  taskQueue: string;
  playbooksDir: string;
  openapi: OpenAPIRegistry;
};

const SubmitTaskResponse = z
  .object({ taskId: TaskId, runId: z.string(), existing: z.boolean(), links: z.record(z.string(), z.string()) })
  .meta({ id: 'SubmitTaskResponse' });

const TaskIdParams = z.object({ taskId: TaskId });

export function tasksRouter({ temporal, taskQueue, playbooksDir, openapi }: TasksRouterDeps): Router {
  const router = Router();

  openapi.registerPath({
    method: 'post',
    path: '/api/v1/tasks',
    summary: 'Submit a task; the same taskId again answers the existing task.',
    request: { body: { content: { 'application/json': { schema: SubmitTaskRequest } } } },
    responses: {
      202: { description: 'Accepted', content: { 'application/json': { schema: SubmitTaskResponse } } },
      200: { description: 'Already submitted', content: { 'application/json': { schema: SubmitTaskResponse } } },
      400: problemResponse('Invalid task'),
    },
  });
  router.post('/tasks', async (req, res) => {
    const request = parseOrThrow(SubmitTaskRequest, req.body);
    assertPlaybookExists(playbooksDir, request.playbook);
    const spec: TaskSpec = { ...request, taskId: request.taskId ?? `task-${crypto.randomUUID()}` };
    const result = await startTask(temporal, taskQueue, spec);
    tasksSubmitted.inc({ outcome: result.existing ? 'existing' : 'new' });
    forTask(spec.taskId).info({ action: spec.action, services: spec.services, existing: result.existing }, 'task submitted');
    res
      .status(result.existing ? 200 : 202)
      .location(`/api/v1/tasks/${spec.taskId}`)
      .json({
        ...result,
        links: { self: `/api/v1/tasks/${spec.taskId}`, audit: `/api/v1/audit/tasks/${spec.taskId}` },
      });
  });

  openapi.registerPath({
    method: 'get',
    path: '/api/v1/tasks/{taskId}',
    summary: 'Live state of a task from its workflow.',
    request: { params: TaskIdParams },
    responses: { 200: { description: 'Live state' }, 404: problemResponse('No such task') },
  });
  router.get('/tasks/:taskId', async (req, res) => {
    const { taskId } = parseOrThrow(TaskIdParams, req.params);
    const handle = temporal.workflow.getHandle(taskId);
    try {
      const [description, state] = await Promise.all([handle.describe(), handle.query(stateQuery)]);
      res.json({ ...state, workflow: { runId: description.runId, status: description.status.name } });
    } catch (err) {
      if ((err as Error).name === 'WorkflowNotFoundError') throw new NotFoundError(`no task ${taskId}`);
      throw err;
    }
  });

  return router;
}

function assertPlaybookExists(playbooksDir: string, playbook: string): void {
  const file = path.resolve(playbooksDir, playbook);
  if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
    throw new ValidationError([{ field: 'playbook', message: `${playbook} does not exist in the playbooks folder` }]);
  }
}
