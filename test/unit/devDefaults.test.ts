import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashToken } from '../../src/api/auth';
import { loadConfig } from '../../src/config';
import { DEV_LOAD_THRESHOLD_PCT, devDefaults } from '../../src/stack';

describe('opsledger dev defaults', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'opsledger-devdefaults-'));
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  test('a local admin token and a secret key, kept private in the data folder and reused', () => {
    const first = devDefaults(loadConfig({ OPSLEDGER_DATA_DIR: dataDir }), {});
    const again = devDefaults(loadConfig({ OPSLEDGER_DATA_DIR: dataDir }), {});
    expect(again.token).toBe(first.token);
    expect(first.config.OPSLEDGER_TOKENS).toContainEqual({ name: 'dev-admin', role: 'admin', sha256: hashToken(first.token) });
    expect(again.config.OPSLEDGER_SECRET_KEY).toBe(first.config.OPSLEDGER_SECRET_KEY);
    for (const file of ['admin-token', 'secret-key']) {
      expect((fs.statSync(path.join(dataDir, file)).mode & 0o777).toString(8)).toBe('600');
    }
  });

  test('admits up to 200% load unless OPSLEDGER_LOAD_THRESHOLD_PCT says otherwise', () => {
    expect(devDefaults(loadConfig({ OPSLEDGER_DATA_DIR: dataDir }), {}).config.OPSLEDGER_LOAD_THRESHOLD_PCT).toBe(
      DEV_LOAD_THRESHOLD_PCT,
    );
    const env = { OPSLEDGER_DATA_DIR: dataDir, OPSLEDGER_LOAD_THRESHOLD_PCT: '80' };
    expect(devDefaults(loadConfig(env), env).config.OPSLEDGER_LOAD_THRESHOLD_PCT).toBe(80);
  });
});
