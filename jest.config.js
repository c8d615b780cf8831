// Tests log only warnings unless LOG_LEVEL says otherwise.
process.env.LOG_LEVEL ??= 'warn';

/** Unit and integration tests; the global setup starts PostgreSQL and a Temporal dev server. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The production shape brings up its own cluster per file: `npm run test:cluster` (jest.cluster.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/cluster/'],
  transform: {
    // Type-checking is `npm run typecheck`'s job; here ts-jest only transpiles, which is fast.
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
  testTimeout: 120000,
  // The suites share one dev server and one database on two cores.
  maxWorkers: 2,
};
