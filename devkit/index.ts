// devkit: the development support shared by test/, chaos/ and bench/ (not part of the package).
export * from './child.js';
export * from './databases.js';
export * from './env.js';
export * from '../lib/testing/free-port.js';
export * from '../lib/testing/embedded-postgres.js';
export * from './processes.js';
export * from './redact.js';
export * from './schema-dump.js';
export * from './tcp-proxy.js';
export * from './test-clock.js';
export * from './wait.js';
