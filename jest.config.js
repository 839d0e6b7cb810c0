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
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    // Relative imports are written with `.js` suffixes (NodeNext); map them
    // back to the extension-less path so Jest resolves the `.ts` source.
    '^(\\.{1,2}/.*)\\.js$': '$1',
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
