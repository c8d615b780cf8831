import type { Client } from '@temporalio/client';
import express, { type Express } from 'express';
import helmet from 'helmet';
import type { TaskRuntime, TemporalUi } from '../../contracts';
import type { AdmissionRepository } from '../admission/repository';
import type { Db } from '../db/pool';
import { NotFoundError } from '../errors';
import type { LedgerRepository } from '../ledger/repository';
import { logger } from '../logger';
import { httpRequestSeconds } from '../metrics';
import { authenticate, requireRole, type TokenConfig } from './auth';
import { refuseNulCharacters } from './textGuard';
import { buildOpenApiDocument, createOpenApiRegistry } from './openapi';
import { problemHandler } from './problem';
import { agentsRouter } from './routes/agents';
import { auditPageRouter } from './routes/auditPage';
import { auditRouter } from './routes/audit';
import { auditExportRouter } from './routes/auditExport';
import { auditTasksRouter } from './routes/auditTasks';
import { dispatchRouter } from './routes/dispatch';
import { healthRouter } from './routes/health';
import { tasksRouter } from './routes/tasks';
import { verifyRouter } from './routes/verify';
import { whoamiRouter } from './routes/whoami';

export type AppDeps = {
  db: Db;
  ledger: LedgerRepository;
  temporal: Client;
  admission: AdmissionRepository;
  runtime: TaskRuntime;
  playbooksDir: string;
  tokens: TokenConfig;
  secretKey?: string;
  cursorSecret: string;
  /** The Temporal Web UI the page links operators to; without it the page shows no such links. */
  temporalUi?: TemporalUi;
};

export function createApp(deps: AppDeps): Express {
  const app = express();
  const openapi = createOpenApiRegistry();
  // First, so that every answer carries them, refusals included.
  app.use(
    helmet({
      // What the API answers (JSON, problem documents, metrics) loads nothing and is framed nowhere;
      // the audit page sets its own policy (routes/auditPage.ts).
      contentSecurityPolicy: {
        useDefaults: false,
        directives: { defaultSrc: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"], frameAncestors: ["'none'"] },
      },
      xFrameOptions: { action: 'deny' },
    }),
  );
  app.use(express.json({ limit: '1mb' }));
  app.use(refuseNulCharacters);
  app.use(authenticate(deps.tokens));
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched';
      httpRequestSeconds.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
      logger.debug({ method: req.method, url: req.originalUrl, status: res.statusCode, ms: seconds * 1000 }, 'request');
    });
    next();
  });

  app.use(healthRouter({ ...deps, openapi }));
  // The page is public; the data it shows needs the reader's own token.
  app.use(auditPageRouter());
  app.use('/api/v1', tasksRouter({ ...deps, openapi }));
  app.use('/api/v1/audit', requireRole('viewer'));
  app.use('/api/v1', verifyRouter({ ...deps, openapi }));
  app.use('/api/v1', auditTasksRouter({ ...deps, openapi }));
  app.use('/api/v1', auditExportRouter({ ...deps, openapi }));
  app.use('/api/v1', auditRouter({ ...deps, openapi }));
  app.use('/api/v1', agentsRouter({ ...deps, openapi }));
  app.use('/api/v1', dispatchRouter({ ...deps, openapi }));
  app.use('/api/v1', whoamiRouter({ openapi, temporalUi: deps.temporalUi }));

  const document = buildOpenApiDocument(openapi);
  app.get('/api/v1/openapi.json', (_req, res) => {
    res.json(document);
  });

  app.use((req, _res, next) => next(new NotFoundError(`no route ${req.method} ${req.path}`)));
  app.use(problemHandler);
  return app;
}
