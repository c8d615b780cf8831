import { ConfigError, loadConfig } from '../../src/config';

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
    ['OPSLEDGER_OUTPUT_TAIL_LINES', '0', 'OPSLEDGER_OUTPUT_TAIL_LINES'],
  ])('%s=%s is refused with a message naming it', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(message);
    expect(() => loadConfig({ [name]: value })).toThrow(`(got ${JSON.stringify(value)})`);
  });

  test('every bad variable is reported at once', () => {
    try {
      loadConfig({ PORT: 'x', TEMPORAL_ADDRESS: 'y' });
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect((err as ConfigError).issues).toHaveLength(2);
    }
  });
});
