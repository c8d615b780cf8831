import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Client } from '@temporalio/client';
import { Router } from 'express';
import { z } from 'zod';
import type { Db } from '../../db/pool';
import { logger } from '../../logger';
import { registry } from '../../metrics';
import { jsonResponse, problemResponse } from '../openapi';
import { sendProblem } from '../problem';

export type HealthRouterDeps = { db: Db; temporal: Client; openapi: OpenAPIRegistry };

const Liveness = z.object({ status: z.literal('ok') }).meta({ id: 'Liveness' });

const Readiness = z
  .object({
    status: z.literal('ready'),
    checks: z.array(z.object({ name: z.string(), ok: z.boolean() })),
  })
  .meta({ id: 'Readiness' });

const READY_CHECK_TIMEOUT_MS = 2000;

export function healthRouter({ db, temporal, openapi }: HealthRouterDeps): Router {
  const router = Router();

  // Probes run without a token.
  openapi.registerPath({
    method: 'get',
    path: '/healthz',
    summary: 'The API process is up.',
    security: [],
    responses: { 200: jsonResponse('Up', Liveness) },
  });
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' } satisfies z.infer<typeof Liveness>);
  });

  openapi.registerPath({
    method: 'get',
    path: '/readyz',
    summary: 'Ready when PostgreSQL and Temporal both answer.',
    security: [],
    responses: {
      200: jsonResponse('Ready', Readiness),
      503: problemResponse('Not ready: the problem names each failing check; why it failed is in the API’s log'),
    },
  });
  router.get('/readyz', async (req, res) => {
    const checks = await Promise.all([
      check('postgres', () => db.query('SELECT 1')),
      check('temporal', () => temporal.connection.workflowService.getSystemInfo({})),
    ]);
    const failing = checks.filter((c) => !c.ok);
    if (failing.length === 0) {
      res.json({ status: 'ready', checks } satisfies z.infer<typeof Readiness>);
      return;
    }
    sendProblem(res, {
      type: 'https://opsledger.dev/problems/NotReady',
      title: 'Not ready',
      status: 503,
      detail: `not answering: ${failing.map((c) => c.name).join(', ')}`,
      instance: req.originalUrl,
    });
  });

  router.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  return router;
}

async function check(name: string, probe: () => Promise<unknown>) {
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), READY_CHECK_TIMEOUT_MS).unref()),
    ]);
    return { name, ok: true };
  } catch (err) {
    // The probe is anonymous, and a connection error names internal hosts and ports: only the log has it.
    logger.warn({ check: name, err }, 'readiness check failed');
    return { name, ok: false };
  }
}
