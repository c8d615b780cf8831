import crypto from 'node:crypto';
import type { RequestHandler } from 'express';
import { z } from 'zod';
import { ForbiddenError, UnauthorizedError } from '../errors';

export const ROLES = ['viewer', 'operator', 'orchestrator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export type Principal = { name: string; role: Role };
type TokenEntry = Principal & { sha256: Buffer };

/**
 * OPSLEDGER_TOKENS: comma-separated `name:role:sha256-of-token` entries. Only hashes are
 * configured, so the configuration at rest holds no usable token.
 */
export const TokensSchema = z
  .string()
  .transform((text) => text.split(',').map((entry) => entry.trim()).filter(Boolean))
  .pipe(
    z.array(
      z
        .string()
        .regex(/^[A-Za-z0-9._@-]+:(viewer|operator|orchestrator|admin):[0-9a-f]{64}$/, 'expected name:role:sha256hex entries (role: viewer, operator, orchestrator or admin)'),
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

/** Who may do what: viewer reads; operator commands; orchestrator submits; admin does all. */
const GRANTS: Record<Role, Role[]> = {
  viewer: ['viewer', 'operator', 'orchestrator', 'admin'],
  operator: ['operator', 'admin'],
  orchestrator: ['orchestrator', 'admin'],
  admin: ['admin'],
};

/** Identifies the caller from `Authorization: Bearer`; routes decide with `requireRole`. */
export function authenticate(tokens: TokenConfig): RequestHandler {
  const entries: TokenEntry[] = tokens.map((t) => ({ ...t, sha256: Buffer.from(t.sha256, 'hex') }));
  return (req, res, next) => {
    const header = req.get('authorization');
    if (!header) return next();
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return next(new UnauthorizedError('expected an Authorization: Bearer <token> header'));
    const presented = crypto.createHash('sha256').update(match[1]!).digest();
    const found = entries.find((e) => crypto.timingSafeEqual(e.sha256, presented));
    if (!found) return next(new UnauthorizedError('unknown token'));
    res.locals.principal = { name: found.name, role: found.role } satisfies Principal;
    next();
  };
}

/** 401 without a token, 403 for a role that may not. */
export function requireRole(needed: Role): RequestHandler {
  return (_req, res, next) => {
    const principal = res.locals.principal as Principal | undefined;
    if (!principal) {
      res.set('WWW-Authenticate', 'Bearer');
      return next(new UnauthorizedError('a bearer token is required'));
    }
    if (!GRANTS[needed].includes(principal.role)) {
      return next(new ForbiddenError(`role ${principal.role} may not do this; it needs ${needed}`));
    }
    next();
  };
}
