import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readCheckpointFile, signCheckpoint, writeCheckpointFile } from '../../src/ledger/checkpoint';

const KEY = 'test-checkpoint-key-0123456789';
const head = { chainSeq: '1042', rowHash: 'ab'.repeat(32) };
const takenAt = new Date('2025-01-31T12:00:00.000Z');

describe('ledger checkpoints', () => {
  let dir: string;
  const file = () => path.join(dir, 'ledger.checkpoint.json');

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-checkpoint-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a written checkpoint reads back identical, from an owner-only file with nothing else beside it', async () => {
    const checkpoint = signCheckpoint(head, takenAt, KEY);
    await writeCheckpointFile(file(), checkpoint);

    expect(await readCheckpointFile(file(), KEY)).toEqual(checkpoint);
    expect(fs.statSync(file()).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['ledger.checkpoint.json']);
  });

  test('the signature is HMAC-SHA256 over the documented canonical bytes', () => {
    const checkpoint = signCheckpoint(head, takenAt, KEY);
    const canonical = `1|1042|${head.rowHash}|2025-01-31T12:00:00.000Z`;
    expect(checkpoint).toEqual({
      version: 1,
      chainSeq: '1042',
      rowHash: head.rowHash,
      takenAt: '2025-01-31T12:00:00.000Z',
      signature: crypto.createHmac('sha256', KEY).update(canonical).digest('hex'),
    });
  });

  test('a file edited by hand is refused', async () => {
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, KEY));
    const edited = JSON.parse(fs.readFileSync(file(), 'utf8'));
    edited.chainSeq = '900';
    fs.writeFileSync(file(), JSON.stringify(edited));

    await expect(readCheckpointFile(file(), KEY)).rejects.toThrow('checkpoint signature does not match');
  });

  test('a checkpoint signed with another key is refused', async () => {
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, 'another-key-for-another-ledger'));

    await expect(readCheckpointFile(file(), KEY)).rejects.toThrow('checkpoint signature does not match');
  });

  test('a file that is not a checkpoint is refused naming what is wrong', async () => {
    fs.writeFileSync(file(), JSON.stringify({ version: 1, chainSeq: 12, rowHash: 'x', takenAt: 'yesterday' }));
    await expect(readCheckpointFile(file(), KEY)).rejects.toThrow(/is not a checkpoint: .*chainSeq.*rowHash.*takenAt.*signature/);

    fs.writeFileSync(file(), '{"version": 1,');
    await expect(readCheckpointFile(file(), KEY)).rejects.toThrow('not valid JSON');

    await expect(readCheckpointFile(path.join(dir, 'missing.json'), KEY)).rejects.toThrow('cannot read checkpoint file');
  });

  test('a checkpoint that cannot be written says where, and leaves no temporary file', async () => {
    const missingDir = path.join(dir, 'no-such-dir', 'checkpoint.json');
    await expect(writeCheckpointFile(missingDir, signCheckpoint(head, takenAt, KEY))).rejects.toThrow(
      `cannot write checkpoint file ${missingDir}`,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  test('a short key is refused before anything is signed', () => {
    expect(() => signCheckpoint(head, takenAt, 'short')).toThrow('at least 16 bytes');
  });

  test('rewriting a checkpoint replaces it whole', async () => {
    await writeCheckpointFile(file(), signCheckpoint(head, takenAt, KEY));
    const newer = signCheckpoint({ chainSeq: '2000', rowHash: 'cd'.repeat(32) }, new Date(), KEY);
    await writeCheckpointFile(file(), newer);

    expect(await readCheckpointFile(file(), KEY)).toEqual(newer);
    expect(fs.readdirSync(dir)).toEqual(['ledger.checkpoint.json']);
  });
});
