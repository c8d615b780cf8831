// Tests log only warnings unless LOG_LEVEL says otherwise.
process.env.LOG_LEVEL ??= 'warn';

/**
 * The production shape (`npm run test:cluster`): each file brings up its own `opsledger cluster`
 * (a Temporal server on PostgreSQL, agents and API replicas as processes), so there is no shared
 * global setup, and one file runs at a time on two cores.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/cluster'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  testTimeout: 300000,
  maxWorkers: 1,
};
