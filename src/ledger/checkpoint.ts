import crypto, { type KeyObject } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../db/pool';
import { verifyChain, type ChainHead } from './verify';

/**
 * A checkpoint records the head of an intact chain at a moment, signed, and lives outside the
 * database on the operator's side. Later, verifyAgainstCheckpoint shows whether rows up to it
 * were removed or rewritten, which the chain inside the database cannot show by itself.
 *
 * It is a signed note (c2sp.org/signed-note) with Ed25519, so checking one needs only the public
 * verifier key and golang.org/x/mod/sumdb/note can open it too. Its text follows the checkpoints
 * of transparency logs (c2sp.org/tlog-checkpoint):
 *
 *   ops.example.com/ledger        origin: the signing key's name
 *   1042                          tree size: the head's chain_seq, the row count of an intact chain
 *   n4bQgYhMfWWaL+qgxVrQFaO/...=  the head's row_hash, base64
 *   2025-01-31T12:00:00.000Z      one extension line: when the head was seen
 *
 *   — ops.example.com/ledger <base64(key ID || Ed25519 signature of the four lines)>
 *
 * Unlike a log's, the third line is not an RFC 6962 Merkle root: it is the head row's hash, which
 * covers every earlier row through the chain but admits no inclusion or consistency proofs.
 */
export type Checkpoint = ChainHead & { origin: string; takenAt: string };

export type SignedCheckpoint = Checkpoint & { note: string };

/** What createCheckpoint answers: the signed checkpoint plus how many rows the chain held. */
export type TakenCheckpoint = SignedCheckpoint & { rows: number };

/** Signs checkpoints; made only from the private seed, so a verifier key can never become one. */
export type SignerKey = { readonly name: string; readonly keyId: number; readonly privateKey: KeyObject };

export type VerifierKey = { readonly name: string; readonly keyId: number; readonly publicKey: KeyObject };

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const ED25519 = 0x01;
const SIGNATURE_BYTES = 64;
// The note spec asks verifiers to bound the work one file can cause, and to accept at least 16.
const MAX_SIGNATURES = 100;
const SIGNATURE_PREFIX = '— ';
// RFC 8410's PKCS#8 wrapping of a 32-byte Ed25519 seed: Node imports a bare private key no other way.
const PKCS8_ED25519_SEED_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SIGNER_KEY_FORM = 'PRIVATE+KEY+<name>+<key ID>+<base64 key>, as `opsledger audit keygen` writes it';
const VERIFIER_KEY_FORM = '<name>+<key ID>+<base64 key>, as `opsledger audit keygen` prints it';

/** A new key pair in the encodings of golang.org/x/mod/sumdb/note (GenerateKey). */
export function generateCheckpointKeys(name: string): { signerKey: string; verifierKey: string } {
  assertKeyName(name);
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const publicBytes = encodedPublicKey(publicKey);
  const keyId = hex8(keyIdOf(name, publicBytes));
  return {
    signerKey: `PRIVATE+KEY+${name}+${keyId}+${Buffer.concat([Buffer.of(ED25519), seed]).toString('base64')}`,
    verifierKey: `${name}+${keyId}+${publicBytes.toString('base64')}`,
  };
}

/** Errors name the expected form but never quote the text: it is a private key. */
export function parseSignerKey(text: string): SignerKey {
  const [, name, keyId, key] = /^PRIVATE\+KEY\+([^+]+)\+([0-9a-fA-F]{8})\+(.+)$/.exec(text.trim()) ?? [];
  const seed = ed25519KeyBytes(key);
  if (!name || !keyId || !seed || !isKeyName(name)) throw new CheckpointError(`not a signer key: expected ${SIGNER_KEY_FORM}`);
  const privateKey = crypto.createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_SEED_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const id = keyIdOf(name, encodedPublicKey(crypto.createPublicKey(privateKey)));
  if (id !== parseInt(keyId, 16)) throw new CheckpointError('the signer key is damaged: its key ID does not match its key');
  return { name, keyId: id, privateKey };
}

export function parseVerifierKey(text: string): VerifierKey {
  if (text.startsWith('PRIVATE+KEY+')) {
    throw new CheckpointError('that is the signer (private) key; checking a checkpoint takes the verifier key keygen printed');
  }
  const [, name, keyId, key] = /^([^+]+)\+([0-9a-fA-F]{8})\+(.+)$/.exec(text.trim()) ?? [];
  const publicBytes = ed25519KeyBytes(key);
  if (!name || !keyId || !publicBytes || !isKeyName(name)) {
    throw new CheckpointError(`not a verifier key: expected ${VERIFIER_KEY_FORM}`);
  }
  const encoded = Buffer.concat([Buffer.of(ED25519), publicBytes]);
  const id = keyIdOf(name, encoded);
  if (id !== parseInt(keyId, 16)) throw new CheckpointError('the verifier key is damaged: its key ID does not match its key');
  const publicKey = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicBytes.toString('base64url') }, format: 'jwk' });
  return { name, keyId: id, publicKey };
}

/** Verifies the chain and signs its head; a broken or empty chain is refused, not blessed. */
export async function createCheckpoint(db: Db, signer: SignerKey): Promise<TakenCheckpoint> {
  const verification = await verifyChain(db);
  if (verification.firstBroken) {
    const { chainSeq, taskId, seq, reason } = verification.firstBroken;
    throw new CheckpointError(
      `refusing to checkpoint a broken chain: chain_seq ${chainSeq} (task ${taskId} seq ${seq}): ${reason}`,
    );
  }
  if (!verification.head) throw new CheckpointError('the ledger is empty: there is nothing to checkpoint');
  return { ...signCheckpoint(verification.head, new Date(), signer), rows: verification.rows };
}

export function signCheckpoint(head: ChainHead, takenAt: Date, signer: SignerKey): SignedCheckpoint {
  const checkpoint = { origin: signer.name, chainSeq: head.chainSeq, rowHash: head.rowHash, takenAt: takenAt.toISOString() };
  return { ...checkpoint, note: signNote(checkpointText(checkpoint), signer) };
}

/** Adds one signature line to a note text, byte for byte as golang.org/x/mod/sumdb/note's Sign. */
export function signNote(text: string, signer: SignerKey): string {
  if (!text.endsWith('\n') || hasControlCharacter(text)) throw new CheckpointError('a note text must end in a newline and hold no control characters');
  const keyId = Buffer.alloc(4);
  keyId.writeUInt32BE(signer.keyId);
  const signature = crypto.sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([keyId, signature]).toString('base64')}\n`;
}

/**
 * Answers the text of a note that `verifier` signed. As the note spec requires, signatures of
 * other keys are skipped (a witness may cosign), and one of this key that fails refuses the note.
 */
export function openNote(note: string, verifier: VerifierKey): string {
  const split = note.lastIndexOf('\n\n');
  if (hasControlCharacter(note) || split < 0 || !note.endsWith('\n')) throw notASignedNote(note);
  const text = note.slice(0, split + 1);
  const signatures = note.slice(split + 2, -1).split('\n').map((line) => parseSignatureLine(line, note));
  if (signatures.length > MAX_SIGNATURES) throw new CheckpointError(`more than ${MAX_SIGNATURES} signatures`);
  const ours = signatures.filter((s) => s.name === verifier.name && s.keyId === verifier.keyId);
  const key = `${verifier.name}+${hex8(verifier.keyId)}`;
  if (ours.length === 0) {
    const others = signatures.map((s) => `${s.name}+${hex8(s.keyId)}`).join(', ');
    throw new CheckpointError(`not signed by the verifier key ${key}, only by ${others}: another key signed it, or it belongs to another ledger`);
  }
  const data = Buffer.from(text, 'utf8');
  if (!ours.every((s) => s.signature.length === SIGNATURE_BYTES && crypto.verify(null, data, verifier.publicKey, s.signature))) {
    throw new CheckpointError(`the signature by ${key} does not verify: the checkpoint was changed after it was signed`);
  }
  return text;
}

/** Writes the signed note atomically, readable by the owner only. */
export async function writeCheckpointFile(file: string, checkpoint: Pick<SignedCheckpoint, 'note'>): Promise<void> {
  await writeOwnerOnly(file, checkpoint.note, 'replace').catch((err: Error) => {
    throw new CheckpointError(`cannot write checkpoint file ${file}: ${err.message}`, { cause: err });
  });
}

/** Reads a checkpoint file: its signature under `verifier` first, then the text it signed. */
export async function readCheckpointFile(file: string, verifier: VerifierKey): Promise<Checkpoint> {
  const note = decodeUtf8(file, await readBytes(file, 'checkpoint file'));
  try {
    return parseCheckpointText(openNote(note, verifier), verifier.name);
  } catch (err) {
    throw new CheckpointError(`checkpoint ${file} refused: ${(err as Error).message}`, { cause: err });
  }
}

/** Creates the signer key file; an existing file is never replaced, it may be the only copy of a key. */
export async function writeSignerKeyFile(file: string, signerKey: string): Promise<void> {
  await writeOwnerOnly(file, `${signerKey}\n`, 'create').catch((err: NodeJS.ErrnoException) => {
    const why = err.code === 'EEXIST' ? 'it exists, and a key is never replaced' : err.message;
    throw new CheckpointError(`cannot write signer key file ${file}: ${why}`, { cause: err });
  });
}

/** Like ssh with its identity files, refuses a key that others on the host could read and sign with. */
export async function readSignerKeyFile(file: string): Promise<SignerKey> {
  const bytes = await readBytes(file, 'signer key file');
  const mode = (await fs.stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new CheckpointError(`signer key file ${file} is readable by others (mode ${mode.toString(8)}): chmod 600 it`);
  }
  try {
    return parseSignerKey(bytes.toString('utf8'));
  } catch (err) {
    throw new CheckpointError(`signer key file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function checkpointText({ origin, chainSeq, rowHash, takenAt }: Checkpoint): string {
  return `${origin}\n${chainSeq}\n${Buffer.from(rowHash, 'hex').toString('base64')}\n${takenAt}\n`;
}

/** Only reached for text the verifier's key signed, so a mismatch means the key signed something else. */
function parseCheckpointText(text: string, keyName: string): Checkpoint {
  const lines = text.slice(0, -1).split('\n');
  const problem = checkpointLinesProblem(lines, keyName);
  if (problem) throw new CheckpointError(`signed, but not a ledger checkpoint: ${problem}`);
  const [origin, chainSeq, rootHash, takenAt] = lines as [string, string, string, string];
  return { origin, chainSeq, rowHash: strictBase64(rootHash)!.toString('hex'), takenAt };
}

function checkpointLinesProblem(lines: string[], keyName: string): string | undefined {
  if (lines.length !== 4) return 'expected 4 lines (origin, tree size, root hash, time)';
  const [origin, chainSeq, rootHash, takenAt] = lines as [string, string, string, string];
  if (origin !== keyName) return `its origin is not the key name ${keyName}`;
  if (!/^[1-9][0-9]*$/.test(chainSeq)) return 'its tree size is not a positive integer';
  if (strictBase64(rootHash)?.length !== 32) return 'its root hash is not 32 bytes of base64';
  if (!isIsoInstant(takenAt)) return 'its time is not an ISO 8601 UTC instant';
  return undefined;
}

function parseSignatureLine(line: string, note: string): { name: string; keyId: number; signature: Buffer } {
  const [, name, encoded] = /^— ([^ ]+) (.+)$/.exec(line) ?? [];
  const bytes = strictBase64(encoded ?? '');
  if (!name || !isKeyName(name) || !bytes || bytes.length < 5) throw notASignedNote(note);
  return { name, keyId: bytes.readUInt32BE(0), signature: bytes.subarray(4) };
}

function notASignedNote(note: string): CheckpointError {
  // Earlier releases wrote HMAC checkpoints as JSON; say so rather than only "malformed".
  const hint = note.trimStart().startsWith('{') ? ' (a JSON checkpoint of an earlier release: take a new one)' : '';
  return new CheckpointError(`not a signed note${hint}`);
}

/** The key ID c2sp.org/signed-note recommends: SHA-256(name || 0x0A || 0x01 || public key)[:4]. */
function keyIdOf(name: string, encodedPublic: Buffer): number {
  return crypto.createHash('sha256').update(`${name}\n`, 'utf8').update(encodedPublic).digest().readUInt32BE(0);
}

function encodedPublicKey(publicKey: KeyObject): Buffer {
  return Buffer.concat([Buffer.of(ED25519), Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')]);
}

/** The 32 key bytes after the Ed25519 type byte, or undefined. */
function ed25519KeyBytes(encoded: string | undefined): Buffer | undefined {
  const bytes = strictBase64(encoded ?? '');
  return bytes?.length === 33 && bytes[0] === ED25519 ? bytes.subarray(1) : undefined;
}

// Buffer.from(…, 'base64') skips what is not base64; a signed text must have one reading only.
function strictBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return text !== '' && bytes.toString('base64') === text ? bytes : undefined;
}

/** The note spec's rule for key names: non-empty, no Unicode spaces, no plus. */
function isKeyName(name: string): boolean {
  return /^[^\s+\p{Cc}]+$/u.test(name);
}

function assertKeyName(name: string): void {
  if (!isKeyName(name)) throw new CheckpointError('a key name must be non-empty, without spaces or "+"; e.g. ops.example.com/ledger');
}

function hasControlCharacter(text: string): boolean {
  return /[\u0000-\u0009\u000b-\u001f]/.test(text);
}

function isIsoInstant(text: string): boolean {
  const time = Date.parse(text);
  return !Number.isNaN(time) && new Date(time).toISOString() === text;
}

function hex8(id: number): string {
  return id.toString(16).padStart(8, '0');
}

async function readBytes(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new CheckpointError(`cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

// A signature covers bytes: text that is not UTF-8 must not be read as something it is not.
function decodeUtf8(file: string, bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new CheckpointError(`checkpoint ${file} refused: not UTF-8 text`);
  }
}

/**
 * Writes a temporary file beside `file` and moves it into place whole: rename replaces, link
 * refuses an existing file.
 */
async function writeOwnerOnly(file: string, text: string, mode: 'replace' | 'create'): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomUUID()}.tmp`);
  try {
    const handle = await fs.open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (mode === 'replace') await fs.rename(temporary, file);
    else await fs.link(temporary, file);
  } finally {
    await fs.rm(temporary, { force: true });
  }
}
