import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { buildStatements, type Statement, type Statements } from '../engine/sql/statements.js';
import { DurableWorkerMonitor } from '../engine/worker/worker-monitor.js';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { TimeoutError } from '../errors/timeout.error.js';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from './embedded-postgres.js';

export interface TestDatabaseOptions {
  /**
   * A PostgreSQL server on which this role may `CREATE DATABASE`.
   * @default process.env.DURABLE_TEST_DATABASE_URL, else an embedded PostgreSQL of its own
   * (needs the `embedded-postgres` package)
   */
  serverUrl?: string;
  /** The `schema` option of the app under test. @default 'durable' */
  schema?: string;
}

/** What `drain` needs of the app: a Nest application or testing module. */
export interface AppWithDurable {
  get<T>(token: abstract new (...args: never[]) => T): T;
}

/**
 * A fresh database for one test file, marked as a test database (`durable.test_clock = 'on'`):
 * `advanceClock` installs durable's test clock and jumps over sleeps and timeouts, `drain` runs
 * the app's worker until nothing is left to do now.
 */
export class DurableTestDatabase {
  private readonly pool: pg.Pool;
  private readonly sql: Statements;

  private constructor(
    /** Pass it as `databaseUrl` to `DurableModule.forRoot`. */
    readonly url: string,
    private readonly serverUrl: string,
    private readonly name: string,
    schema: string,
    private readonly server?: EmbeddedPostgresServer,
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
    this.pool.on('error', () => undefined); // the database is dropped with its connections
    this.sql = buildStatements(schema);
  }

  static async start(options: TestDatabaseOptions = {}): Promise<DurableTestDatabase> {
    const given = options.serverUrl ?? process.env.DURABLE_TEST_DATABASE_URL;
    const server = given ? undefined : await startEmbeddedPostgres({ prefix: 'durable-test-pg-' });
    const serverUrl = given ?? server!.adminUrl;
    const name = `durable_test_${randomBytes(6).toString('hex')}`;
    try {
      await onServer(serverUrl, async (client) => {
        await client.query(`create database ${name}`);
        await client.query(`alter database ${name} set durable.test_clock = 'on'`);
      });
    } catch (error) {
      await server?.destroy();
      throw error;
    }
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    return new DurableTestDatabase(url.toString(), serverUrl, name, options.schema ?? 'durable', server);
  }

  /**
   * Moves durable's clock forward by `ms` and wakes the workers, so due sleeps and timeouts run.
   * The first call installs the test clock in the schema (after the app applied the
   * migrations: a production schema's clock is the plain one).
   */
  async advanceClock(ms: number): Promise<void> {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new InvalidArgumentError(`advanceClock takes a finite number of milliseconds >= 0, got ${String(ms)}`);
    }
    await this.run(this.sql.installTestClock());
    await this.run(this.sql.advanceTestClock(ms));
    await this.run(this.sql.wakeAllQueues());
  }

  /**
   * Resolves once the app's worker has nothing left to do now: no run of its queues is running
   * or due, and no handler is in flight. Tasks that sleep or wait for an event stay as they are.
   */
  async drain(app: AppWithDurable, options: { timeoutMs?: number } = {}): Promise<void> {
    const monitor = app.get(DurableWorkerMonitor);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let quiet = 0;
    for (;;) {
      const status = monitor.status();
      if (status.state !== 'running') {
        throw new InvalidArgumentError(`drain needs the app's worker running (it is ${status.state}): init the app, and do not pass worker: false`);
      }
      const [{ count }] = await this.run(this.sql.countBusy(status.queues));
      // Twice in a row: a run claimed this instant is briefly neither due nor in flight.
      quiet = count === 0 && monitor.status().inFlight === 0 ? quiet + 1 : 0;
      if (quiet === 2) return;
      if (Date.now() > deadline) {
        throw new TimeoutError(`drain: after ${timeoutMs} ms, ${count as number} run(s) still running or due and ${monitor.status().inFlight} handler(s) in flight`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Drops the database (ending its connections) and stops the embedded server, if one was started. */
  async close(): Promise<void> {
    await this.pool.end();
    try {
      await onServer(this.serverUrl, (client) => client.query(`drop database if exists ${this.name} with (force)`));
    } finally {
      await this.server?.destroy();
    }
  }

  private async run(statement: Statement) {
    return (await this.pool.query(statement.text, statement.values)).rows as Record<string, unknown>[];
  }
}

async function onServer<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
