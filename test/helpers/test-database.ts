/**
 * Per-test-file databases on the shared server started by global-setup.ts.
 *
 *   let db: TestDatabase;
 *   beforeAll(async () => { db = await createTestDatabase(); });
 *   afterAll(() => db.drop());
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface TestDatabase {
  /** Connection URL of the new database (same host/port/credentials as admin). */
  url: string;
  /** Database name, `durable_t_<hex>`. */
  name: string;
  /** DROP DATABASE ... WITH (FORCE); idempotent. */
  drop(): Promise<void>;
}

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

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `durable_t_${randomBytes(8).toString('hex')}`;
  const ident = pg.escapeIdentifier(name);
  await withAdminClient(async (client) => {
    await client.query(`CREATE DATABASE ${ident}`);
    await client.query(`ALTER DATABASE ${ident} SET durable.test_clock = 'on'`);
  });

  let dropped: Promise<void> | undefined;
  return {
    name,
    url: withDatabase(adminUrl(), name),
    drop() {
      dropped ??= withAdminClient(async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${ident} WITH (FORCE)`);
      }).catch((error: unknown) => {
        dropped = undefined; // allow a retry after a failed drop
        throw error;
      });
      return dropped;
    },
  };
}
