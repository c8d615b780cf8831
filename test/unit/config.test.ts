import { ConfigError, ConfigSchema, loadConfig } from '../../src/config';

/** The message loadConfig throws for `env`, which must throw. */
function refusal(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${Object.keys(env).join(', ')}`);
}

describe('loadConfig', () => {
  test('applies the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_NAMESPACE: 'default', PORT: 8080 });
    expect(config.DATABASE_URL).toBeUndefined();
  });

  test.each([
    ['PORT', 'eighty', 'PORT: expected a port number'],
    ['PORT', '70000', 'PORT: expected a port from 1 to 65535'],
    ['TEMPORAL_ADDRESS', 'localhost', 'TEMPORAL_ADDRESS: expected host:port'],
    ['DATABASE_URL', 'mysql://x', 'DATABASE_URL: expected a postgres:// or postgresql:// URL'],
    ['OPSLEDGER_OUTPUT_TAIL_LINES', '0', 'OPSLEDGER_OUTPUT_TAIL_LINES: expected a positive integer'],
    ['OPSLEDGER_LOAD_THRESHOLD_PCT', '200000', 'OPSLEDGER_LOAD_THRESHOLD_PCT: expected a positive integer up to 100000'],
    ['OPSLEDGER_CHECKPOINT_VERIFIER_KEY', 'PRIVATE+KEY+ops+0a1b2c3d+AbCd', 'OPSLEDGER_CHECKPOINT_VERIFIER_KEY: expected <name>+<key ID>+<base64 key>'],
  ])('%s=%s is refused with a message naming it and the rule', (name, value, message) => {
    expect(refusal({ [name]: value }).message).toContain(message);
  });

  test('a rejected secret is never quoted: a short key, a URL with its password', () => {
    const { message, issues } = refusal({
      OPSLEDGER_SECRET_KEY: 'hunter2',
      OPSLEDGER_CURSOR_SECRET: 'tiny-s3cret',
      DATABASE_URL: 'postgresql://admin:Pa55 word@db.internal:5432/ledger',
    });

    expect(issues).toEqual([
      'DATABASE_URL: expected a postgres:// or postgresql:// URL',
      'OPSLEDGER_CURSOR_SECRET: expected at least 16 characters',
      'OPSLEDGER_SECRET_KEY: expected at least 16 characters',
    ]);
    for (const secret of ['hunter2', 'tiny-s3cret', 'Pa55', 'admin:', 'db.internal']) expect(message).not.toContain(secret);
  });

  // Each setting, now and as others are added: whatever its rule, its refusal names it but not the value.
  test.each(Object.keys(ConfigSchema.shape))('%s never quotes a value it refuses', (name) => {
    for (const value of ['SeCrEt', 's SeCrEt', '-1SeCrEt', 'SeCrEt:99999999', 'postgresql://u:SeCrEt@h/db x', 'a:admin:SeCrEt']) {
      let message: string | undefined;
      try {
        loadConfig({ [name]: value });
      } catch (err) {
        message = (err as Error).message;
      }
      if (message === undefined) continue;
      expect(message).toMatch(new RegExp(`^Invalid configuration:\\n  ${name}: \\S`));
      expect(message).not.toContain('SeCrEt');
    }
  });

  test('every bad variable is reported at once', () => {
    expect(refusal({ PORT: 'x', TEMPORAL_ADDRESS: 'y' }).issues).toHaveLength(2);
  });
});
