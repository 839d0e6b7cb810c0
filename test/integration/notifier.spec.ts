/**
 * The LISTEN connection (issue 13, item 7): a half-open connection is noticed by a periodic ping
 * and replaced (listeners get `undefined`: "anything meanwhile was lost", so the worker polls);
 * `stop()` ends a pending back-off at once; the LISTEN client durable builds has TCP keep-alive
 * with a short initial delay.
 */
import pg from 'pg';
import type { Client } from 'pg';
import { DurableConnection } from '../../lib/engine/db/connection.js';
import { Notifier, type Notification } from '../../lib/engine/db/notifier.js';
import { resolveOptions } from '../../lib/engine/options.js';
import { TcpProxy } from '../../devkit/tcp-proxy.js';
import { eventually, sleep, sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const CHANNEL = 'notifier_spec';

class Lines {
  readonly lines: string[] = [];
  log = (message: string) => void this.lines.push(message);
  warn = (message: string) => void this.lines.push(message);
  error = (message: string) => void this.lines.push(message);
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

describe('a LISTEN connection that stops answering (through a proxy)', () => {
  let proxy: TcpProxy;
  let notifier: Notifier | undefined;

  beforeAll(() => {
    const target = new URL(db.url);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
  });
  afterAll(async () => {
    await notifier?.stop();
    await proxy?.close();
  });

  it('is noticed within the ping interval and replaced; listeners get undefined, then notifications again', async () => {
    const url = await proxy.listen(db.url);
    const logger = new Lines();
    const received: Notification[] = [];
    notifier = new Notifier(
      () => new pg.Client({ connectionString: url, connectionTimeoutMillis: 500 }),
      [CHANNEL], logger, { pingIntervalMs: 300, pingTimeoutMs: 300 },
    );
    notifier.subscribe((notification) => received.push(notification));
    await eventually(() => received.length === 1, 10_000, 'the first LISTEN');
    expect(received).toEqual([undefined]);
    await sql.query(`select pg_notify($1, 'before')`, [CHANNEL]);
    await eventually(() => received.length === 2, 5000, 'a notification');

    proxy.freeze();
    const frozenAt = Date.now();
    await eventually(() => logger.lines.some((line) => /LISTEN connection failed/.test(line)), 5000, 'the failure to be noticed');
    // Ping interval + ping timeout + a little.
    expect(Date.now() - frozenAt).toBeLessThan(300 + 300 + 700);

    proxy.restore();
    await eventually(() => received.length === 3, 15_000, 'the LISTEN to be re-established');
    expect(received[2]).toBeUndefined();
    await sql.query(`select pg_notify($1, 'after')`, [CHANNEL]);
    await eventually(() => received.length === 4, 5000, 'a notification after the reconnect');
    expect(received[3]).toEqual({ channel: CHANNEL, payload: 'after' });

    const stopping = Date.now();
    await notifier.stop();
    notifier = undefined;
    expect(Date.now() - stopping).toBeLessThan(1000);
  }, 40_000);
});

describe('pingIfDue: an idle worker\'s poll stands in for the ping', () => {
  it('sends the ping only when it is due within the window, and the timer then waits a whole interval', async () => {
    const pings: number[] = [];
    class CountingClient extends pg.Client {
      override query(...args: unknown[]): never {
        if ((args[0] as { text?: string })?.text === 'select 1') pings.push(Date.now());
        return (super.query as (...a: unknown[]) => never)(...args);
      }
    }
    const received: Notification[] = [];
    const notifier = new Notifier(() => new CountingClient({ connectionString: db.url }), [CHANNEL], new Lines(), { pingIntervalMs: 1000 });
    notifier.subscribe((notification) => received.push(notification));
    try {
      await eventually(() => received.length === 1, 10_000, 'the first LISTEN');
      // Due in about a second: not within 100 ms; a window of half the interval or more never.
      expect(await notifier.pingIfDue(100)).toBe(false);
      expect(await notifier.pingIfDue(500)).toBe(false);
      await sleep(750);
      expect(await notifier.pingIfDue(400)).toBe(true);
      expect(pings).toHaveLength(1);
      // The timer's own ping comes a whole interval after the early one, not when it was due.
      await sleep(700);
      expect(pings).toHaveLength(1);
      await eventually(() => pings.length === 2, 5000, "the timer's ping");
      expect(pings[1] - pings[0]).toBeGreaterThanOrEqual(950);
      await sql.query(`select pg_notify($1, 'still listening')`, [CHANNEL]);
      await eventually(() => received.length === 2, 5000, 'a notification');
    } finally {
      await notifier.stop();
    }
  }, 20_000);
});

describe('stop()', () => {
  it('ends a pending back-off at once', async () => {
    const logger = new Lines();
    // Nothing listens on port 1: every attempt fails, and the notifier backs off.
    const notifier = new Notifier(
      () => new pg.Client({ connectionString: 'postgres://nobody@127.0.0.1:1/none', connectionTimeoutMillis: 500 }),
      [CHANNEL], logger, { minBackoffMs: 2000 },
    );
    notifier.subscribe(() => undefined);
    // Today's back-off doubles from 100 ms: by the time it reaches 1600 ms this waits long enough.
    await eventually(
      () => logger.lines.some((line) => /retrying in (\d+) ms/.test(line) && Number(/retrying in (\d+) ms/.exec(line)![1]) >= 1600),
      10_000, 'a long back-off',
    );
    await sleep(50);
    const started = Date.now();
    await notifier.stop();
    expect(Date.now() - started).toBeLessThan(300);
  }, 20_000);

  it('returns at once when nothing subscribed', async () => {
    const notifier = new Notifier(() => new pg.Client({ connectionString: 'postgres://nobody@127.0.0.1:1/none' }), [CHANNEL], new Lines());
    await notifier.stop();
  });
});

describe('the LISTEN client durable builds', () => {
  it('has TCP keep-alive with a 10 s initial delay', async () => {
    const connection = await DurableConnection.open(resolveOptions({ databaseUrl: db.url, worker: false }).connection, new Lines());
    try {
      const client = (connection.notifier as unknown as { connect: () => Client }).connect();
      const wire = (client as unknown as { connection: { _keepAlive: boolean; _keepAliveInitialDelayMillis: number } }).connection;
      expect(wire._keepAlive).toBe(true);
      expect(wire._keepAliveInitialDelayMillis).toBe(10_000);
    } finally {
      await connection.close();
    }
  });
});
