/**
 * Per-test-file databases on the shared server started by global-setup.ts.
 *
 *   let db: TestDatabase;
 *   beforeAll(async () => { db = await createTestDatabase(); });
 *   afterAll(() => db.drop());
 */
import pg from 'pg';
import { createDatabase, type Database } from '../../devkit/databases.js';

/**
 * `url`: connection URL of the new database (same host/port/credentials as admin); `name`:
 * `durable_t_<hex>`; `drop()`: DROP DATABASE ... WITH (FORCE), idempotent.
 */
export type TestDatabase = Database;

/** Admin URL of the shared test server (set by test/global-setup.ts). */
export function adminUrl(): string {
  const url = process.env.DURABLE_TEST_ADMIN_URL;
  if (!url) {
    throw new Error(
      'DURABLE_TEST_ADMIN_URL is not set: run the tests through jest (npm test) so test/global-setup.ts runs',
    );
  }
  return url;
}

/** A fresh database marked for durable's test clock (installed by the first advanceClock, after the migrations). */
export function createTestDatabase(): Promise<TestDatabase> {
  return createDatabase(adminUrl(), { prefix: 'durable_t', testClock: true });
}

/** Whether the test server refuses a wrong password (the embedded one does; a trust-auth one does not). */
export async function serverChecksPasswords(): Promise<boolean> {
  const url = new URL(adminUrl());
  url.password = 'surely-not-the-password';
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.end();
    return false;
  } catch {
    return true;
  }
}

/** Connections durable opened (application_name 'nestjs-durable') to one database. */
export async function durableConnections(admin: pg.Pool, database: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'nestjs-durable'`,
    [database],
  );
  return rows[0].n;
}

/** Terminates every backend durable opened to one database; resolves with how many it ended. */
export async function terminateDurableBackends(admin: pg.Pool, database: string): Promise<number> {
  const { rows } = await admin.query<{ ok: boolean }>(
    `select pg_terminate_backend(pid) as ok from pg_stat_activity
     where datname = $1 and application_name = 'nestjs-durable' and pid <> pg_backend_pid()`,
    [database],
  );
  return rows.filter((row) => row.ok).length;
}
