import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  generateCheckpointKeys,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  readCheckpointFile,
  readSignerKeyFile,
  signCheckpoint,
  signNote,
  writeCheckpointFile,
  writeSignerKeyFile,
  type SignerKey,
} from '../../src/ledger/checkpoint';

const NAME = 'ops.example.com/ledger';
const keys = generateCheckpointKeys(NAME);
const signer = parseSignerKey(keys.signerKey);
const verifier = parseVerifierKey(keys.verifierKey);
// Base64 may hold '+' too: a key splits at its first separators only.
const [, , KEY_ID, PUBLIC_KEY] = /^([^+]+)\+([^+]+)\+(.+)$/.exec(keys.verifierKey)!;
const SEED = keys.signerKey.replace(/^(?:[^+]+\+){4}/, '');
const head = { chainSeq: '1042', rowHash: '9f'.repeat(32) };
const takenAt = new Date('2025-01-31T12:00:00.000Z');

// golang.org/x/mod/sumdb/note's documented example: its key pair, text and signature line.
const GO_SIGNER_KEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const GO_VERIFIER_KEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_SIGNATURE_LINE = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=';

/** The key ID as c2sp.org/signed-note defines it, computed here apart from the code under test. */
function keyIdOf(name: string, publicKey: Buffer): string {
  return crypto.createHash('sha256').update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.of(1), publicKey])).digest('hex').slice(0, 8);
}

describe('ledger checkpoints', () => {
  let dir: string;
  const file = () => path.join(dir, 'ledger.checkpoint');
  const write = (text: string) => fs.writeFileSync(file(), text);
  const read = () => fs.readFileSync(file(), 'utf8');

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-checkpoint-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a written checkpoint reads back as signed, from an owner-only file with nothing else beside it', async () => {
    const checkpoint = signCheckpoint(head, takenAt, signer);
    await writeCheckpointFile(file(), checkpoint);

    expect(await readCheckpointFile(file(), verifier)).toEqual({ origin: NAME, ...head, takenAt: '2025-01-31T12:00:00.000Z' });
    expect(read()).toBe(checkpoint.note);
    expect(fs.statSync(file()).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['ledger.checkpoint']);
  });

  test('the file is a C2SP signed note whose text is a transparency-log checkpoint', () => {
    const { note } = signCheckpoint(head, takenAt, signer);
    const publicKey = Buffer.from(PUBLIC_KEY!, 'base64');
    const text = `${NAME}\n1042\n${Buffer.from(head.rowHash, 'hex').toString('base64')}\n2025-01-31T12:00:00.000Z\n`;

    expect(note.startsWith(`${text}\n— ${NAME} `)).toBe(true);
    const signature = Buffer.from(note.slice(text.length + `\n— ${NAME} `.length, -1), 'base64');
    expect([KEY_ID, publicKey.length, publicKey[0]]).toEqual([keyIdOf(NAME, publicKey.subarray(1)), 33, 0x01]);
    expect(signature.subarray(0, 4).toString('hex')).toBe(KEY_ID);
    const ed25519 = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.subarray(1).toString('base64url') }, format: 'jwk' });
    expect(crypto.verify(null, Buffer.from(text), ed25519, signature.subarray(4))).toBe(true);
  });

  test('notes are signed and opened byte for byte as golang.org/x/mod/sumdb/note does', () => {
    const goSigner = parseSignerKey(GO_SIGNER_KEY);
    const note = signNote(GO_TEXT, goSigner);

    expect(note).toBe(`${GO_TEXT}\n${GO_SIGNATURE_LINE}\n`);
    expect(openNote(note, parseVerifierKey(GO_VERIFIER_KEY))).toBe(GO_TEXT);
  });

  test('a new key pair is encoded as sumdb/note encodes one, and its halves belong together', () => {
    expect(keys.signerKey).toMatch(new RegExp(`^PRIVATE\\+KEY\\+${NAME}\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}$`));
    expect(keys.verifierKey).toMatch(new RegExp(`^${NAME}\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]{44}$`));
    expect(keys.signerKey.startsWith(`PRIVATE+KEY+${NAME}+${KEY_ID}+`)).toBe(true);
    expect(openNote(signNote('hello\n', signer), verifier)).toBe('hello\n');
    expect(() => generateCheckpointKeys('has space')).toThrow('a key name must be non-empty, without spaces or "+"');
    expect(() => generateCheckpointKeys('a+b')).toThrow('a key name must be non-empty');
  });

  test.each([
    ['its tree size', (note: string) => note.replace('\n1042\n', '\n900\n')],
    ['its root hash', (note: string) => note.replace(Buffer.from(head.rowHash, 'hex').toString('base64'), Buffer.alloc(32, 1).toString('base64'))],
    ['its time', (note: string) => note.replace('2025-01-31T12:00:00.000Z', '2026-01-31T12:00:00.000Z')],
    ['an added line', (note: string) => note.replace('.000Z\n', '.000Z\nextra\n')],
  ])('a checkpoint edited after signing (%s) is refused', async (_what, edit) => {
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, signer));
    write(edit(read()));

    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow(
      `checkpoint ${file()} refused: the signature by ${NAME}+${KEY_ID} does not verify: the checkpoint was changed after it was signed`,
    );
  });

  test('a checkpoint signed by another key is refused, also when its signature line claims our key', async () => {
    const other = parseSignerKey(generateCheckpointKeys(NAME).signerKey);
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, other));
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow(/refused: not signed by the verifier key ops\.example\.com\/ledger\+[0-9a-f]{8}, only by/);

    // The key ID is short, not secret: copying ours into the line only reaches the signature check.
    const claimsOurs: SignerKey = { ...other, keyId: verifier.keyId };
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, claimsOurs));
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow('does not verify');
  });

  test('holding only the verifier key, no checkpoint can be made that verifies', async () => {
    const publicBytes = Buffer.from(PUBLIC_KEY!, 'base64');

    // Its bytes taken for the private key: the key ID gives it away when parsed...
    expect(() => parseSignerKey(`PRIVATE+KEY+${keys.verifierKey}`)).toThrow('the signer key is damaged: its key ID does not match its key');
    // ...and signing with them anyway gives a signature the public key does not accept.
    const asSeed = crypto.createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), publicBytes.subarray(1)]),
      format: 'der',
      type: 'pkcs8',
    });
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, { name: NAME, keyId: verifier.keyId, privateKey: asSeed }));
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow('does not verify');

    // What the HMAC checkpoints allowed: whoever could check one could also make one.
    const text = signCheckpoint(head, takenAt, signer).note.split('\n\n')[0]! + '\n';
    const mac = crypto.createHmac('sha512', keys.verifierKey).update(text).digest();
    write(`${text}\n— ${NAME} ${Buffer.concat([Buffer.from(KEY_ID!, 'hex'), mac]).toString('base64')}\n`);
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow('does not verify');

    fs.writeFileSync(path.join(dir, 'signer.key'), `${keys.verifierKey}\n`, { mode: 0o600 });
    await expect(readSignerKeyFile(path.join(dir, 'signer.key'))).rejects.toThrow('not a signer key');
  });

  test('signatures of other keys beside ours are skipped, as the note spec requires', async () => {
    const witness = parseSignerKey(generateCheckpointKeys('witness.example.org').signerKey);
    const { note } = signCheckpoint(head, takenAt, signer);
    const cosigned = `${note}${signNote(note.split('\n\n')[0]! + '\n', witness).split('\n\n')[1]}`;
    write(cosigned);

    expect(await readCheckpointFile(file(), verifier)).toMatchObject(head);
  });

  test('the signer key file is created owner-only, never replaced, and refused once others can read it', async () => {
    const keyFile = path.join(dir, 'signer.key');
    await writeSignerKeyFile(keyFile, keys.signerKey);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect((await readSignerKeyFile(keyFile)).keyId).toBe(verifier.keyId);

    await expect(writeSignerKeyFile(keyFile, generateCheckpointKeys(NAME).signerKey)).rejects.toThrow(
      `cannot write signer key file ${keyFile}: it exists, and a key is never replaced`,
    );
    expect(fs.readFileSync(keyFile, 'utf8')).toBe(`${keys.signerKey}\n`);
    expect(fs.readdirSync(dir)).toEqual(['signer.key']);

    fs.chmodSync(keyFile, 0o640);
    await expect(readSignerKeyFile(keyFile)).rejects.toThrow(`signer key file ${keyFile} is readable by others (mode 640): chmod 600 it`);
  });

  test('a bad key is refused without being quoted', () => {
    const refusal = (attempt: () => unknown) => {
      try {
        attempt();
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error('expected a refusal');
    };
    const otherSeed = Buffer.from(SEED, 'base64').map((byte, i) => (i === 9 ? byte ^ 1 : byte));
    const damaged = refusal(() => parseSignerKey(keys.signerKey.replace(SEED, Buffer.from(otherSeed).toString('base64'))));
    const misnamed = refusal(() => parseSignerKey(keys.signerKey.replace('+KEY+', '+KY+')));
    const swapped = refusal(() => parseVerifierKey(keys.signerKey));

    expect([damaged, misnamed, swapped]).toEqual([
      'the signer key is damaged: its key ID does not match its key',
      expect.stringContaining('not a signer key: expected PRIVATE+KEY+<name>+<key ID>+<base64 key>'),
      expect.stringContaining('that is the signer (private) key'),
    ]);
    for (const message of [damaged, misnamed, swapped]) expect(message).not.toContain(SEED.slice(0, 12));
    expect(() => parseVerifierKey(`${NAME}+00000000+${PUBLIC_KEY}`)).toThrow('the verifier key is damaged');
    expect(() => parseVerifierKey('not a key')).toThrow('not a verifier key: expected <name>+<key ID>+<base64 key>');
  });

  test('a file that is not a checkpoint is refused naming what is wrong', async () => {
    write(JSON.stringify({ version: 1, chainSeq: '12', rowHash: 'ab'.repeat(32), signature: 'cd'.repeat(32) }));
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow('not a signed note (a JSON checkpoint of an earlier release: take a new one)');

    write(signCheckpoint(head, takenAt, signer).note.replace(/\n/g, '\r\n'));
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow('refused: not a signed note');

    fs.writeFileSync(file(), Buffer.concat([Buffer.from(signCheckpoint(head, takenAt, signer).note), Buffer.of(0xff)]));
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow('not UTF-8 text');

    write(signNote('a note this key signed\nthat is no checkpoint\n', signer));
    await expect(readCheckpointFile(file(), verifier)).rejects.toThrow('signed, but not a ledger checkpoint: expected 4 lines');

    await expect(readCheckpointFile(path.join(dir, 'missing'), verifier)).rejects.toThrow('cannot read checkpoint file');
  });

  test('a checkpoint that cannot be written says where, and leaves no temporary file', async () => {
    const missingDir = path.join(dir, 'no-such-dir', 'checkpoint');
    await expect(writeCheckpointFile(missingDir, signCheckpoint(head, takenAt, signer))).rejects.toThrow(
      `cannot write checkpoint file ${missingDir}`,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('rewriting a checkpoint replaces it whole', async () => {
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, signer));
    const newer = signCheckpoint({ chainSeq: '2000', rowHash: 'cd'.repeat(32) }, new Date(), signer);
    await writeCheckpointFile(file(), newer);

    expect(await readCheckpointFile(file(), verifier)).toMatchObject({ chainSeq: '2000', rowHash: 'cd'.repeat(32) });
    expect(fs.readdirSync(dir)).toEqual(['ledger.checkpoint']);
  });
});
