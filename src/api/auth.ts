import crypto from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { z } from 'zod';
import { ForbiddenError, TooManyRequestsError, UnauthorizedError } from '../errors';

/** People and programs get one of the first four; `agent` only reports its own capacity. */
export const ROLES = ['viewer', 'operator', 'orchestrator', 'admin', 'agent'] as const;
export type Role = (typeof ROLES)[number];
type GrantedRole = Exclude<Role, 'agent'>;

export type Principal = { name: string; role: Role };
type TokenEntry = Principal & { sha256: Buffer };

/**
 * OPSLEDGER_TOKENS: comma-separated `name:role:sha256-of-token` entries. Only hashes are
 * configured, so the configuration at rest holds no usable token. An agent token's name is the
 * agent id it may report for, so it must be one.
 */
export const TokensSchema = z
  .string()
  .transform((text) => text.split(',').map((entry) => entry.trim()).filter(Boolean))
  .pipe(
    z.array(
      z
        .string()
        .regex(
          /^(?:[A-Za-z0-9._@-]+:(?:viewer|operator|orchestrator|admin)|[A-Za-z0-9._-]{1,128}:agent):[0-9a-f]{64}$/,
          'expected name:role:sha256hex entries (role: viewer, operator, orchestrator, admin, or agent with the agent id as its name)',
        ),
    ),
  )
  .transform((entries) =>
    entries.map((entry) => {
      const [name, role, hash] = entry.split(':') as [string, Role, string];
      return { name, role, sha256: hash };
    }),
  );

export type TokenConfig = z.output<typeof TokensSchema>;

export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return `olt_${crypto.randomBytes(24).toString('base64url')}`;
}

/** Who may do what: viewer reads; operator commands; orchestrator submits; admin does all but report as an agent. */
const GRANTS: Record<GrantedRole, Role[]> = {
  viewer: ['viewer', 'operator', 'orchestrator', 'admin'],
  operator: ['operator', 'admin'],
  orchestrator: ['orchestrator', 'admin'],
  admin: ['admin'],
};

/**
 * Token guessing is cheap to try, so an address gets this many failed authentications per
 * window; past it, no token it presents is checked until the window ends.
 */
export const FAILED_AUTH_LIMIT = 10;
const FAILED_AUTH_WINDOW_MS = 15 * 60_000;

export const clientAddress = (req: Request) => ipKeyGenerator(req.ip ?? 'unknown');

const tooManyFailures = () =>
  new TooManyRequestsError('too many failed authentications from this address; try again after Retry-After seconds');

/** Identifies the caller from `Authorization: Bearer`; routes decide with `requireRole` or `requireAgent`. */
export function authenticate(tokens: TokenConfig): RequestHandler {
  const entries: TokenEntry[] = tokens.map((t) => ({ ...t, sha256: Buffer.from(t.sha256, 'hex') }));
  const failures = rateLimit({
    windowMs: FAILED_AUTH_WINDOW_MS,
    limit: FAILED_AUTH_LIMIT,
    keyGenerator: clientAddress,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, _res, next) => next(tooManyFailures()),
  });
  // Only failures are counted, so a busy client with a good token never comes near the limit.
  const refuse = (req: Request, res: Response, next: (err?: unknown) => void, reason: string) =>
    failures(req, res, (err?: unknown) => next(err ?? new UnauthorizedError(reason)));

  return async (req, res, next) => {
    const header = req.get('authorization');
    if (!header) return next();
    // Checked before the token, so that past the limit even a right guess is told nothing.
    const seen = await failures.getKey(clientAddress(req));
    if (seen && seen.totalHits >= FAILED_AUTH_LIMIT) {
      if (seen.resetTime) res.set('Retry-After', String(Math.max(1, Math.ceil((seen.resetTime.getTime() - Date.now()) / 1000))));
      return next(tooManyFailures());
    }
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return refuse(req, res, next, 'expected an Authorization: Bearer <token> header');
    const presented = crypto.createHash('sha256').update(match[1]!).digest();
    const found = entries.find((e) => crypto.timingSafeEqual(e.sha256, presented));
    if (!found) return refuse(req, res, next, 'unknown token');
    res.locals.principal = { name: found.name, role: found.role } satisfies Principal;
    next();
  };
}

export function principalOf(res: Response): Principal | undefined {
  return res.locals.principal as Principal | undefined;
}

function requirePrincipal(res: Response): Principal {
  const principal = principalOf(res);
  if (!principal) {
    res.set('WWW-Authenticate', 'Bearer');
    throw new UnauthorizedError('a bearer token is required');
  }
  return principal;
}

/** 401 without a token, 403 for a role that may not. */
export function requireRole(needed: GrantedRole): RequestHandler {
  return (_req, res, next) => {
    const principal = requirePrincipal(res);
    if (!GRANTS[needed].includes(principal.role)) {
      throw new ForbiddenError(`role ${principal.role} may not do this; it needs ${needed}`);
    }
    next();
  };
}

/** Only the agent the path names may speak for it: a token of role agent whose name is that agent id. */
export function requireAgent(param: string): RequestHandler {
  return (req, res, next) => {
    const principal = requirePrincipal(res);
    if (principal.role !== 'agent' || principal.name !== req.params[param]) {
      throw new ForbiddenError('only the agent’s own token (role agent, named by its agent id) may report for it');
    }
    next();
  };
}
