import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Db } from '../db/pool';
import { verifyChain, type ChainHead } from './verify';

/**
 * A checkpoint records the head of an intact chain at a moment, signed, and lives outside the
 * database on the operator's side. Later, verifyAgainstCheckpoint shows whether rows up to it
 * were removed or rewritten, which the chain inside the database cannot show by itself.
 *
 * The signature is HMAC-SHA256, as lowercase hex, over the UTF-8 bytes of
 *   `${version}|${chainSeq}|${rowHash}|${takenAt}`
 * e.g. `1|1042|9f86d0...|2025-01-31T12:00:00.000Z`, so any tool holding the key can check a file.
 */
export const CheckpointDocument = z.strictObject({
  version: z.literal(1),
  chainSeq: z.string().regex(/^[1-9][0-9]*$/, 'expected a positive integer as a string'),
  rowHash: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
  takenAt: z.iso.datetime(),
  signature: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
});

export type Checkpoint = z.infer<typeof CheckpointDocument>;

/** What createCheckpoint answers: the document plus how many rows the chain held. */
export type TakenCheckpoint = Checkpoint & { rows: number };

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const VERSION = 1;
// HMAC accepts any key; a short one is a configuration mistake, not a choice.
const MIN_KEY_BYTES = 16;

/** Verifies the chain and signs its head; a broken or empty chain is refused, not blessed. */
export async function createCheckpoint(db: Db, key: string): Promise<TakenCheckpoint> {
  assertUsableKey(key);
  const verification = await verifyChain(db);
  if (verification.firstBroken) {
    const { chainSeq, taskId, seq, reason } = verification.firstBroken;
    throw new CheckpointError(
      `refusing to checkpoint a broken chain: chain_seq ${chainSeq} (task ${taskId} seq ${seq}): ${reason}`,
    );
  }
  if (!verification.head) throw new CheckpointError('the ledger is empty: there is nothing to checkpoint');
  return { ...signCheckpoint(verification.head, new Date(), key), rows: verification.rows };
}

export function signCheckpoint(head: ChainHead, takenAt: Date, key: string): Checkpoint {
  assertUsableKey(key);
  const unsigned = { version: VERSION, chainSeq: head.chainSeq, rowHash: head.rowHash, takenAt: takenAt.toISOString() } as const;
  return { ...unsigned, signature: signatureOf(unsigned, key) };
}

/** Writes the document (without `rows`, which is not signed) atomically, readable by the owner only. */
export async function writeCheckpointFile(file: string, checkpoint: Checkpoint): Promise<void> {
  const { version, chainSeq, rowHash, takenAt, signature } = checkpoint;
  const text = `${JSON.stringify({ version, chainSeq, rowHash, takenAt, signature }, null, 2)}\n`;
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomUUID()}.tmp`);
  try {
    const handle = await fs.open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temporary, file);
  } catch (err) {
    await fs.rm(temporary, { force: true });
    throw new CheckpointError(`cannot write checkpoint file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads and checks a checkpoint file: its shape, then its signature under `key`. */
export async function readCheckpointFile(file: string, key: string): Promise<Checkpoint> {
  assertUsableKey(key);
  const parsed = CheckpointDocument.safeParse(parseJson(file, await readText(file)));
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(file)'}: ${issue.message}`);
    throw new CheckpointError(`${file} is not a checkpoint: ${issues.join('; ')}`);
  }
  const checkpoint = parsed.data;
  if (!signatureMatches(checkpoint, key)) {
    throw new CheckpointError(
      `checkpoint signature does not match: ${file} was edited, or was signed with another key`,
    );
  }
  return checkpoint;
}

async function readText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new CheckpointError(`cannot read checkpoint file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`${file} is not a checkpoint: not valid JSON (${(err as Error).message})`);
  }
}

function signatureOf(fields: Omit<Checkpoint, 'signature'>, key: string): string {
  const canonical = `${fields.version}|${fields.chainSeq}|${fields.rowHash}|${fields.takenAt}`;
  return crypto.createHmac('sha256', key).update(canonical, 'utf8').digest('hex');
}

function signatureMatches(checkpoint: Checkpoint, key: string): boolean {
  const expected = Buffer.from(signatureOf(checkpoint, key), 'hex');
  const actual = Buffer.from(checkpoint.signature, 'hex');
  return actual.length === expected.length && crypto.timingSafeEqual(actual, expected);
}

function assertUsableKey(key: string): void {
  if (Buffer.byteLength(key, 'utf8') < MIN_KEY_BYTES) {
    throw new CheckpointError(`the checkpoint key must be at least ${MIN_KEY_BYTES} bytes long`);
  }
}
