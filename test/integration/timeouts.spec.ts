/**
 * Timeouts are honest (issue 13, item 2). A statement that runs or waits longer than
 * `queryTimeoutMs` is cancelled by PostgreSQL (statement_timeout / lock_timeout): the call rejects
 * with DatabaseTimeoutError and nothing was written, so a retry cannot duplicate it. Only a
 * server that does not answer at all is given up on by the client, after a margin, with
 * OutcomeUnknownError ("may or may not have committed"), never with DatabaseUnavailableError. A
 * refused connection is still DatabaseUnavailableError: nothing was sent.
 */
import type pg from 'pg';
import { DataSource } from 'typeorm';
import {
  DatabaseTimeoutError, DatabaseUnavailableError, DurableClient, DurableError, OutcomeUnknownError,
} from '../../lib/index.js';
import { DurableConnection } from '../../lib/engine/db/connection.js';
import { resolveOptions } from '../../lib/engine/options.js';
import { TcpProxy } from '../../devkit/tcp-proxy.js';
import { eventually, sleep, sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const QUERY_TIMEOUT_MS = 1000;
const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

/** How the promise settled and how long it took. */
async function timed<T>(promise: Promise<T>) {
  const started = Date.now();
  try {
    return { value: await promise, error: undefined, ms: Date.now() - started };
  } catch (error) {
    return { value: undefined, error: error as Error, ms: Date.now() - started };
  }
}

let db: TestDatabase;
let sql: pg.Pool;
beforeAll(async () => {
  db = await createTestDatabase();
  sql = sqlPool(db.url);
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

/** Waits until no backend of this database waits on a lock any more (the blocked statement ended). */
async function noneWaiting(): Promise<void> {
  await eventually(async () => {
    const { rows } = await sql.query(
      `select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`,
    );
    return rows[0].n === 0;
  }, 10_000, 'no blocked backend');
}

describe('a statement that exceeds queryTimeoutMs is rolled back by the server', () => {
  let client: DurableClient;
  beforeAll(async () => {
    client = await DurableClient.connect({ databaseUrl: db.url, queryTimeoutMs: QUERY_TIMEOUT_MS, logger: silent });
  });
  afterAll(() => client?.close());

  it('a spawn blocked on a row lock rejects with DatabaseTimeoutError, and the spawn never happens', async () => {
    const locker = await sql.connect();
    let outcome: Awaited<ReturnType<typeof timed>>;
    try {
      // An uncommitted spawn with the same idempotency key: durable's spawn waits for its row.
      await locker.query('begin');
      await locker.query(
        `select * from durable.spawn_task('nobody-polls', 'idle', '{"n":0}', '{}', 1, '{"kind":"none"}', null, 'held-key', null, null)`,
      );
      outcome = await timed(client.spawn('idle', { n: 1 }, { queue: 'nobody-polls', idempotencyKey: 'held-key' }));
      // Held for longer than the call took: a statement still running would now go on.
      await sleep(500);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    expect(outcome.error).toBeInstanceOf(DatabaseTimeoutError);
    expect(outcome.error).toBeInstanceOf(DurableError);
    expect(outcome.error).not.toBeInstanceOf(DatabaseUnavailableError);
    expect(outcome.error!.message).toMatch(/rolled back.*nothing was written/);
    expect(outcome.ms).toBeLessThan(QUERY_TIMEOUT_MS + 1500);
    await noneWaiting();
    await sleep(200);
    const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where idempotency_key = 'held-key'`);
    expect(rows[0].n).toBe(0);

    // The key is free: the same spawn now succeeds, once.
    const spawned = await client.spawn('idle', { n: 2 }, { queue: 'nobody-polls', idempotencyKey: 'held-key' });
    expect(spawned.created).toBe(true);
  });

  it('a long statement through the Store (pg_sleep) is cancelled at queryTimeoutMs, and its write is rolled back', async () => {
    await sql.query('create table if not exists timeout_probe (x int)');
    const connection = await DurableConnection.open(
      resolveOptions({ databaseUrl: db.url, queryTimeoutMs: QUERY_TIMEOUT_MS, worker: false }).connection, silent,
    );
    try {
      const outcome = await timed(connection.store.query({
        text: 'with w as (insert into timeout_probe values (1) returning x) select pg_sleep(3) from w', values: [],
      }));
      expect(outcome.error).toBeInstanceOf(DatabaseTimeoutError);
      expect((outcome.error as DatabaseTimeoutError).code).toBe('57014');
      expect(outcome.ms).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 50);
      expect(outcome.ms).toBeLessThan(QUERY_TIMEOUT_MS + 1500);
      // Had it gone on, it would have committed by now.
      await sleep(3000);
      const { rows } = await sql.query('select count(*)::int as n from timeout_probe');
      expect(rows[0].n).toBe(0);
      // The pool still works.
      expect(await connection.store.query({ text: 'select 1 as one', values: [] })).toEqual([{ one: 1 }]);
    } finally {
      await connection.close();
    }
  }, 20_000);
});

describe('a server that stops answering, or refuses connections (through a proxy)', () => {
  let proxy: TcpProxy;
  let proxiedUrl: string;

  beforeAll(async () => {
    const target = new URL(db.url);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
    proxiedUrl = await proxy.listen(db.url);
  });
  afterEach(() => proxy.restore());
  afterAll(() => proxy?.close());

  it('a call sent into a partition rejects with OutcomeUnknownError after queryTimeoutMs and a margin, never DatabaseUnavailableError', async () => {
    const client = await DurableClient.connect({ databaseUrl: proxiedUrl, queryTimeoutMs: QUERY_TIMEOUT_MS, logger: silent });
    try {
      const { taskId } = await client.spawn('idle', { n: 1 }, { queue: 'nobody-polls' }); // leaves a pooled connection
      proxy.freeze();
      const outcome = await timed(client.spawn('idle', { n: 2 }, { queue: 'nobody-polls' }));
      expect(outcome.error).toBeInstanceOf(OutcomeUnknownError);
      expect(outcome.error).toBeInstanceOf(DurableError);
      expect(outcome.error).not.toBeInstanceOf(DatabaseUnavailableError);
      expect(outcome.error!.message).toMatch(/may or may not have committed/);
      expect(outcome.ms).toBeGreaterThan(QUERY_TIMEOUT_MS);
      expect(outcome.ms).toBeLessThan(QUERY_TIMEOUT_MS + 8000);

      proxy.restore();
      await eventually(async () => (await client.getTask(taskId).catch(() => null))?.state === 'pending', 15_000, 'the client to work again');
    } finally {
      proxy.restore();
      await client.close();
    }
  }, 40_000);

  it('with the app\'s own dataSource too: OutcomeUnknownError, not a hang', async () => {
    const dataSource = await new DataSource({ type: 'postgres', url: proxiedUrl, poolSize: 2 }).initialize();
    const client = await DurableClient.connect({ dataSource, queryTimeoutMs: QUERY_TIMEOUT_MS, logger: silent });
    try {
      await client.listQueues(); // leaves a pooled connection
      proxy.freeze();
      const outcome = await timed(Promise.race([
        client.spawn('idle', { n: 3 }, { queue: 'nobody-polls' }),
        sleep(QUERY_TIMEOUT_MS + 10_000).then(() => 'hung'),
      ]));
      expect(outcome.error).toBeInstanceOf(OutcomeUnknownError);
    } finally {
      proxy.restore();
      await client.close();
      await dataSource.destroy();
    }
  }, 40_000);

  it('a refused connection still rejects with DatabaseUnavailableError', async () => {
    const client = await DurableClient.connect({ databaseUrl: proxiedUrl, queryTimeoutMs: QUERY_TIMEOUT_MS, logger: silent });
    try {
      await client.listQueues();
      proxy.down();
      const outcome = await timed(client.spawn('idle', { n: 4 }, { queue: 'nobody-polls' }));
      expect(outcome.error).toBeInstanceOf(DatabaseUnavailableError);
      expect(outcome.error).not.toBeInstanceOf(OutcomeUnknownError);
      expect(outcome.ms).toBeLessThan(5000);
    } finally {
      proxy.restore();
      await client.close();
    }
  }, 30_000);
});
