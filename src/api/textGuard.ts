import type { RequestHandler } from 'express';
import { ValidationError } from '../errors';

/**
 * PostgreSQL text cannot hold U+0000: a query parameter or a JSON string with one reached the
 * database as an error it could only answer with a 500. No field of this API has a use for it,
 * so any request carrying one is refused here, naming where.
 */
export const refuseNulCharacters: RequestHandler = (req, _res, next) => {
  const found = nulAt(req.query, 'query') ?? nulAt(req.body, 'body');
  next(found ? new ValidationError([{ field: found, message: 'the NUL character (U+0000) is not allowed' }]) : undefined);
};

function nulAt(value: unknown, path: string): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (key.includes('\u0000')) return `${path}.${key.replace(/\u0000/g, '\\u0000')}`;
    const found = nulAt(inner, `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}
