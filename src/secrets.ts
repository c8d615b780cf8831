import crypto from 'node:crypto';
import { z } from 'zod';

/**
 * Secret variables travel from the API to the agent sealed (AES-256-GCM), so Temporal's history,
 * which keeps workflow and activity inputs, never holds them in clear. API and workers share the
 * key (OPSLEDGER_SECRET_KEY); the ledger and the logs never see the values at all.
 *
 * A sealed blob is bound to its task: the task id is the cipher's associated data, so a blob
 * copied into another task's input (by anyone who can start workflows) does not open there.
 * The id is also carried in clear, only to say which task a misplaced blob belongs to.
 */
const VERSION = 'v2';

export class SecretKeyError extends Error {
  override name = 'SecretKeyError';
}

function keyBytes(secretKey: string): Buffer {
  return crypto.createHash('sha256').update(secretKey).digest();
}

const encode = (bytes: Buffer | string) => Buffer.from(bytes).toString('base64url');

export function sealSecrets(vars: Record<string, string>, secretKey: string, taskId: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', keyBytes(secretKey), iv);
  cipher.setAAD(Buffer.from(taskId, 'utf8'));
  const body = Buffer.concat([cipher.update(JSON.stringify(vars), 'utf8'), cipher.final()]);
  return [VERSION, encode(taskId), encode(iv), encode(body), encode(cipher.getAuthTag())].join('.');
}

export function unsealSecrets(sealed: string, secretKey: string, taskId: string): Record<string, string> {
  const [version, boundTo, iv, body, tag] = sealed.split('.');
  if (version === 'v1') throw new SecretKeyError('sealed secrets are in the v1 format, which is bound to no task: submit the task again');
  if (version !== VERSION || !boundTo || !iv || !body || !tag) throw new SecretKeyError('sealed secrets are malformed');
  const sealedFor = Buffer.from(boundTo, 'base64url').toString('utf8');
  if (sealedFor !== taskId) throw new SecretKeyError(`sealed secrets belong to task ${sealedFor}, not to task ${taskId}`);
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', keyBytes(secretKey), Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(taskId, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    const text = Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    return z.record(z.string(), z.string()).parse(JSON.parse(text));
  } catch {
    throw new SecretKeyError(
      `sealed secrets cannot be opened for task ${taskId}: OPSLEDGER_SECRET_KEY differs between the API and this worker, or the blob was altered`,
    );
  }
}
