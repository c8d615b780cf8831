import crypto from 'node:crypto';
import { ValidationError } from '../errors';

/**
 * A page cursor: the position of the last row served, (created_at in epoch microseconds, id), the
 * ledger's keyset order. It is opaque to clients and signed, so a client can neither forge a
 * position nor send a damaged one that would surface as a database error.
 *
 * It carries only the position, not the filters: a page asked with other filters simply continues
 * from that position under the new filters, which is harmless, as every filter only narrows rows.
 */
export interface CursorPosition {
  createdAtMicros: bigint;
  id: string;
}

// 128 bits of HMAC-SHA256 are plenty for a tag that only has to resist forgery.
const TAG_BYTES = 16;
const PAYLOAD = /^(-?\d{1,19}):(\d{1,19})$/;

export function encodeCursor(position: CursorPosition, secret: string): string {
  const payload = Buffer.from(`${position.createdAtMicros}:${position.id}`, 'utf8').toString('base64url');
  return `${payload}.${tag(payload, secret).toString('base64url')}`;
}

/** The position in a cursor made by encodeCursor with the same secret; a 400 naming `cursor` otherwise. */
export function decodeCursor(cursor: string, secret: string): CursorPosition {
  const [payload, givenTag, ...rest] = cursor.split('.');
  if (!payload || !givenTag || rest.length > 0 || !sameTag(Buffer.from(givenTag, 'base64url'), tag(payload, secret))) {
    throw invalidCursor();
  }
  const match = PAYLOAD.exec(Buffer.from(payload, 'base64url').toString('utf8'));
  if (!match) throw invalidCursor();
  return { createdAtMicros: BigInt(match[1]!), id: match[2]! };
}

function tag(payload: string, secret: string): Buffer {
  return crypto.createHmac('sha256', secret).update(payload).digest().subarray(0, TAG_BYTES);
}

function sameTag(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

function invalidCursor(): ValidationError {
  return new ValidationError([
    { field: 'cursor', message: 'not a cursor this API issued (use nextCursor of the previous page as is)' },
  ]);
}
