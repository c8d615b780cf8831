import type { ErrorRequestHandler, Response } from 'express';
import { z } from 'zod';
import { OpsError, ValidationError, type FieldIssue } from '../errors';
import { logger } from '../logger';

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details.' });

export type Problem = z.infer<typeof ProblemSchema>;

export function sendProblem(res: Response, problem: Problem): void {
  res.status(problem.status).type('application/problem+json').json(problem);
}

/** zod issues -> one entry per bad field, named as the client wrote it: `services[0]`. */
export function fieldIssues(error: z.ZodError, prefix?: string): FieldIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.reduce<string>(
      (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
      '',
    );
    const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const field = unknownKeys.length > 0 ? [path, unknownKeys.join(', ')].filter(Boolean).join('.') : path;
    return { field: [prefix, field].filter(Boolean).join('.') || '(body)', message: issue.message };
  });
}

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix?: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ValidationError(fieldIssues(parsed.error, prefix));
  return parsed.data;
}

const BODY_ERRORS: Record<string, string> = {
  'entity.parse.failed': 'request body is not valid JSON',
  'entity.too.large': 'request body is too large',
  'charset.unsupported': 'request body charset is not supported: send UTF-8',
  'encoding.unsupported': 'request body content-encoding is not supported',
};

/** The one mapping from errors to problem+json. */
export const problemHandler: ErrorRequestHandler = (err, req, res, _next) => {
  if (err instanceof OpsError) {
    sendProblem(res, {
      type: `https://opsledger.dev/problems/${err.name}`,
      title: err.title,
      status: err.status,
      detail: err.message,
      instance: req.originalUrl,
      ...(err instanceof ValidationError ? { errors: err.issues } : {}),
    });
    return;
  }
  const bodyError = err as { type?: string; status?: number; expose?: boolean; message?: string };
  // body-parser's refusals (bad JSON, too large, an unsupported charset or encoding...) are the
  // client's: 4xx, exposed, with a type of their own.
  if (typeof bodyError.type === 'string' && bodyError.expose && bodyError.status && bodyError.status >= 400 && bodyError.status < 500) {
    sendProblem(res, {
      type: 'https://opsledger.dev/problems/ValidationError',
      title: 'Invalid request',
      status: bodyError.status,
      detail: BODY_ERRORS[bodyError.type] ?? 'the request body could not be read',
      instance: req.originalUrl,
      errors: [{ field: '(body)', message: bodyError.message ?? 'malformed' }],
    });
    return;
  }
  const outage = unavailableDependency(err);
  if (outage) {
    logger.warn({ err, url: req.originalUrl }, `${outage} did not answer`);
    res.set('Retry-After', String(OUTAGE_RETRY_AFTER_S));
    sendProblem(res, {
      type: 'https://opsledger.dev/problems/DependencyUnavailable',
      title: 'Service unavailable',
      status: 503,
      detail: `${outage} is not answering; the same request may succeed once it is back`,
      instance: req.originalUrl,
    });
    return;
  }
  logger.error({ err, url: req.originalUrl }, 'unhandled API error');
  sendProblem(res, { type: 'about:blank', title: 'Internal Server Error', status: 500, instance: req.originalUrl });
};

const OUTAGE_RETRY_AFTER_S = 5;

/** gRPC's UNAVAILABLE and DEADLINE_EXCEEDED: the Temporal server is down, restarting or overloaded. */
const TEMPORAL_OUTAGE_CODES = new Set([14, 4]);

/** Node's socket errors and PostgreSQL's shutdown codes (class 08 is the connection exceptions). */
const POSTGRES_OUTAGE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', '57P01', '57P02', '57P03']);

/**
 * Which of the API's dependencies a failure says is not answering, if that is what it says: the
 * client learns to retry (503), where a 500 would call it a bug. Neither the address nor the
 * driver's message reaches the answer; the log has them.
 */
function unavailableDependency(err: unknown): 'Temporal' | 'PostgreSQL' | undefined {
  const { code, cause, message } = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  if (TEMPORAL_OUTAGE_CODES.has(code as number) || TEMPORAL_OUTAGE_CODES.has(cause?.code as number)) return 'Temporal';
  if (typeof code === 'string' && (POSTGRES_OUTAGE_CODES.has(code) || code.startsWith('08'))) return 'PostgreSQL';
  // pg's own words for a connection that ended under a query, or a pool that could not connect.
  if (typeof message === 'string' && /^Connection terminated|^timeout exceeded when trying to connect/.test(message)) return 'PostgreSQL';
  return undefined;
}
