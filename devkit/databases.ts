// Fresh databases on a PostgreSQL server, URLs to them, and pools on them: the same for tests,
// chaos runs and benchmarks.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** `url` with its database replaced by `database` (same host, port and credentials). */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Runs `fn` with a client connected to `url`, and ends the client. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A pg pool for looking at (or setting up) a database from outside the app under test. Its idle
 * connections may die (the database dropped WITH (FORCE), the server stopped) without crashing
 * the process.
 */
export function sqlPool(url: string, options: { max?: number; applicationName?: string } = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 4, application_name: options.applicationName });
  pool.on('error', () => undefined);
  return pool;
}

export interface Database {
  name: string;
  /** The admin URL with this database. */
  url: string;
  /** DROP DATABASE ... WITH (FORCE): idempotent, and tried again after a failed drop. */
  drop(): Promise<void>;
}

export interface CreateDatabaseOptions {
  /** The database's name; default `<prefix>_<16 hex digits>`. */
  name?: string;
  /** Default 'durable'. */
  prefix?: string;
  /**
   * Marks the database as a test database (`durable.test_clock = 'on'`); the test clock itself is
   * installed in the schema, after its migrations, by devkit/test-clock.ts. Default false.
   */
  testClock?: boolean;
  /** Drops a database of the same name first; default false. */
  replace?: boolean;
  /** An open connection to the admin URL to run the statements on; default a new one per call. */
  client?: pg.ClientBase;
}

/** CREATE DATABASE on the server of `adminUrl` (a role allowed to create databases). */
export async function createDatabase(adminUrl: string, options: CreateDatabaseOptions = {}): Promise<Database> {
  const name = options.name ?? `${options.prefix ?? 'durable'}_${randomBytes(8).toString('hex')}`;
  const ident = pg.escapeIdentifier(name);
  await onAdmin(adminUrl, options.client, async (client) => {
    if (options.replace) await client.query(`drop database if exists ${ident} with (force)`);
    await client.query(`create database ${ident}`);
    if (options.testClock) await client.query(`alter database ${ident} set durable.test_clock = 'on'`);
  });
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: withDatabase(adminUrl, name),
    drop() {
      dropped ??= dropDatabase(adminUrl, name, options.client).catch((error: unknown) => {
        dropped = undefined; // a later call tries again
        throw error;
      });
      return dropped;
    },
  };
}

/** DROP DATABASE IF EXISTS ... WITH (FORCE): its connections are ended. */
export async function dropDatabase(adminUrl: string, name: string, client?: pg.ClientBase): Promise<void> {
  await onAdmin(adminUrl, client, async (admin) => {
    await admin.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
  });
}

function onAdmin<T>(adminUrl: string, client: pg.ClientBase | undefined, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  return client ? fn(client) : withClient(adminUrl, fn);
}
