/** Smoke test of the test infrastructure itself (global-setup + helpers). */
import pg from 'pg';
import { adminUrl, createTestDatabase, type TestDatabase } from './helpers/test-database.js';

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function databaseExists(name: string): Promise<boolean> {
  const rows = await query<{ n: number }>(
    adminUrl(),
    'select count(*)::int as n from pg_database where datname = $1',
    [name],
  );
  return rows[0]!.n === 1;
}

describe('test infrastructure', () => {
  let a: TestDatabase;
  let b: TestDatabase;

  beforeAll(async () => {
    [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  });

  afterAll(async () => {
    await Promise.all([a?.drop(), b?.drop()]);
  });

  it('exposes an admin URL from global setup', () => {
    expect(adminUrl()).toMatch(/^postgres(ql)?:\/\//);
  });

  it('creates two distinct databases with the test clock enabled', async () => {
    expect(a.name).toMatch(/^durable_t_[0-9a-f]+$/);
    expect(b.name).toMatch(/^durable_t_[0-9a-f]+$/);
    expect(a.name).not.toBe(b.name);
    expect(a.url).not.toBe(b.url);

    for (const db of [a, b]) {
      const [row] = await query<{ db: string; clock: string | null; version: string }>(
        db.url,
        "select current_database() as db, current_setting('durable.test_clock', true) as clock, version() as version",
      );
      expect(row!.db).toBe(db.name);
      expect(row!.clock).toBe('on');
      expect(row!.version).toMatch(/^PostgreSQL \d+/);
    }

    // The admin connection itself must not have the test clock set.
    const [admin] = await query<{ clock: string | null }>(
      adminUrl(),
      "select current_setting('durable.test_clock', true) as clock",
    );
    expect(admin!.clock).not.toBe('on');
  });

  it('drop() removes the database even with open connections, and is idempotent', async () => {
    const c = await createTestDatabase();
    expect(await databaseExists(c.name)).toBe(true);

    const open = new pg.Client({ connectionString: c.url });
    open.on('error', () => undefined); // terminated by DROP ... WITH (FORCE)
    await open.connect();
    try {
      await c.drop();
      await c.drop();
      expect(await databaseExists(c.name)).toBe(false);
    } finally {
      await open.end().catch(() => undefined);
    }
  });

  it('drops the two databases', async () => {
    expect(await databaseExists(a.name)).toBe(true);
    expect(await databaseExists(b.name)).toBe(true);
    await Promise.all([a.drop(), b.drop()]);
    expect(await databaseExists(a.name)).toBe(false);
    expect(await databaseExists(b.name)).toBe(false);
  });
});
