import { loadClusterSettings } from '../../src/cluster/settings';
import { serverConfigYaml, type TemporalPorts } from '../../src/cluster/temporalServer';
import { loadConfig } from '../../src/config';

describe('opsledger cluster settings', () => {
  const config = loadConfig({ OPSLEDGER_DATA_DIR: '/data' });

  test("default to compose's shape: two agents, two APIs, Temporal on 7233 with compose's database names, its UI on 8233", () => {
    expect(loadClusterSettings(config, {})).toEqual({
      OPSLEDGER_CLUSTER_AGENTS: 2,
      OPSLEDGER_CLUSTER_APIS: 2,
      OPSLEDGER_CLUSTER_TEMPORAL_PORT: 7233,
      OPSLEDGER_CLUSTER_UI: true,
      OPSLEDGER_CLUSTER_UI_PORT: 8233,
      OPSLEDGER_CLUSTER_DIR: '/data/cluster',
      DBNAME: 'temporal',
      VISIBILITY_DBNAME: 'temporal_visibility',
    });
  });

  test.each([
    ['OPSLEDGER_CLUSTER_AGENTS', 'two', 'OPSLEDGER_CLUSTER_AGENTS: expected a number of agents'],
    ['OPSLEDGER_CLUSTER_APIS', '1.5', 'OPSLEDGER_CLUSTER_APIS: expected a whole number of API replicas'],
    ['OPSLEDGER_CLUSTER_TEMPORAL_PORT', 'seventy', 'OPSLEDGER_CLUSTER_TEMPORAL_PORT: expected a port number'],
    ['OPSLEDGER_CLUSTER_UI', 'yes', 'OPSLEDGER_CLUSTER_UI: expected 0 or 1'],
    ['OPSLEDGER_CLUSTER_UI_PORT', '99999', 'OPSLEDGER_CLUSTER_UI_PORT'],
    ['DBNAME', 'Temporal; drop', 'DBNAME: expected a PostgreSQL database name'],
  ])('%s=%s is refused with a message naming it, not its value', (name, value, message) => {
    expect(() => loadClusterSettings(config, { [name]: value })).toThrow(message);
    expect(() => loadClusterSettings(config, { [name]: value })).not.toThrow(value);
  });
});

describe("the Temporal server's config", () => {
  const ports: TemporalPorts = {
    frontend: 7233, frontendHttp: 10001, history: 10002, matching: 10003, worker: 10004,
    frontendMembership: 20001, historyMembership: 20002, matchingMembership: 20003, workerMembership: 20004,
  };
  const yaml = serverConfigYaml(
    { serverUrl: 'postgresql://owner:p%40ss@db.local:6543/postgres', history: 'temporal', visibility: 'temporal_visibility' },
    ports,
    '/c/dynamicconfig.yaml',
  );

  test('stores history and SQL visibility in PostgreSQL, as the URL logs in', () => {
    expect(yaml).toContain('visibilityStore: postgres-visibility');
    expect(yaml.match(/pluginName: "postgres12"/g)).toHaveLength(2);
    expect(yaml).toContain('databaseName: "temporal_visibility"');
    expect(yaml).toContain('connectAddr: "db.local:6543"');
    expect(yaml).toContain('password: "p@ss"');
  });

  test('gives every service its own ports on 127.0.0.1', () => {
    for (const port of Object.values(ports)) expect(yaml).toContain(`${port}`);
    expect(yaml.match(/bindOnLocalHost: true/g)).toHaveLength(4);
    expect(yaml).toContain('rpcAddress: "127.0.0.1:7233"');
  });
});
