/** What the global setup hands to every test file, through the environment. */
export const TEST_ENV = {
  /** The shared test database as the application's own login, as the worker and the API connect. */
  databaseUrl: 'OPSLEDGER_TEST_DATABASE_URL',
  /** The same database as the owner that migrated it (the server's superuser). */
  ownerUrl: 'OPSLEDGER_TEST_OWNER_URL',
  adminUrl: 'OPSLEDGER_TEST_ADMIN_URL',
  temporalAddress: 'OPSLEDGER_TEST_TEMPORAL_ADDRESS',
  workflowBundle: 'OPSLEDGER_TEST_WORKFLOW_BUNDLE',
  temporalCli: 'OPSLEDGER_TEST_TEMPORAL_CLI',
} as const;

export type TestServices = {
  scratch: string;
  stops: (() => Promise<void>)[];
  dropDatabase?: { adminUrl: string; database: string };
};

export function testEnv(name: keyof typeof TEST_ENV): string {
  const value = process.env[TEST_ENV[name]];
  if (!value) throw new Error(`${TEST_ENV[name]} is not set: run the tests through jest's global setup`);
  return value;
}
