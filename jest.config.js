// Jest config for nestjs-durable (ESM). Run through `npm test`, which sets
// NODE_OPTIONS=--experimental-vm-modules so Jest can load ESM test modules.
//
// ts-jest transpiles only (tsconfig.json has `isolatedModules: true`, so it
// uses ts.transpileModule); type checking is `npm run typecheck`.

/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  // sample-app/data holds the sample app's embedded PostgreSQL cluster: nothing to crawl there.
  modulePathIgnorePatterns: ['<rootDir>/dist/', '<rootDir>/sample-app/dist/', '<rootDir>/sample-app/data/'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    // Relative imports are written with `.js` suffixes (NodeNext); map them
    // back to the extension-less path so Jest resolves the `.ts` source.
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // The sample app imports the package by name; its tests run it on the library's source.
    '^nestjs-durable$': '<rootDir>/lib/index.ts',
    '^nestjs-durable/testing$': '<rootDir>/lib/testing/index.ts',
    '^nestjs-durable/telemetry$': '<rootDir>/lib/telemetry/index.ts',
    '^nestjs-durable/dashboard$': '<rootDir>/lib/dashboard/index.ts',
  },
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      {
        useESM: true,
        tsconfig: '<rootDir>/tsconfig.json',
      },
    ],
  },
  globalSetup: './test/global-setup.ts',
  globalTeardown: './test/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
