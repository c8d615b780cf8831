import crypto from 'node:crypto';
import { z } from 'zod';

/**
 * Secret variables travel from the API to the agent sealed (AES-256-GCM), so Temporal's history,
 * which keeps workflow and activity inputs, never holds them in clear. API and workers share the
 * key (OPSLEDGER_SECRET_KEY); the ledger and the logs never see the values at all.
 */
const VERSION = 'v1';

export class SecretKeyError extends Error {
  override name = 'SecretKeyError';
}

function keyBytes(secretKey: string): Buffer {
  return crypto.createHash('sha256').update(secretKey).digest();
}

export function sealSecrets(vars: Record<string, string>, secretKey: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', keyBytes(secretKey), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(vars), 'utf8'), cipher.final()]);
  return [VERSION, iv, body, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

export function unsealSecrets(sealed: string, secretKey: string): Record<string, string> {
  const [version, iv, body, tag] = sealed.split('.');
  if (version !== VERSION || !iv || !body || !tag) throw new SecretKeyError('sealed secrets are malformed');
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', keyBytes(secretKey), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const text = Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    return z.record(z.string(), z.string()).parse(JSON.parse(text));
  } catch {
    throw new SecretKeyError('sealed secrets cannot be opened: OPSLEDGER_SECRET_KEY differs between the API and this worker');
  }
}
