import type { Client } from '@temporalio/client';
import { Router } from 'express';
import type { Db } from '../../db/pool';
import { registry } from '../../metrics';
import { sendProblem } from '../problem';

export type HealthRouterDeps = { db: Db; temporal: Client };

const READY_CHECK_TIMEOUT_MS = 2000;

export function healthRouter({ db, temporal }: HealthRouterDeps): Router {
  const router = Router();

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  /** Ready when PostgreSQL and Temporal both answer. */
  router.get('/readyz', async (req, res) => {
    const checks = await Promise.all([
      check('postgres', () => db.query('SELECT 1')),
      check('temporal', () => temporal.connection.workflowService.getSystemInfo({})),
    ]);
    const failing = checks.filter((c) => !c.ok);
    if (failing.length === 0) {
      res.json({ status: 'ready', checks });
      return;
    }
    sendProblem(res, {
      type: 'https://opsledger.dev/problems/NotReady',
      title: 'Not ready',
      status: 503,
      detail: failing.map((c) => `${c.name}: ${c.error}`).join('; '),
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
    return { name, ok: true as const };
  } catch (err) {
    return { name, ok: false as const, error: (err as Error).message };
  }
}
