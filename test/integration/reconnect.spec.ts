import { inspect } from 'node:util';
import type { LoggerService } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type pg from 'pg';
import {
  DatabaseUnavailableError, OutcomeUnknownError, DurableClient, DurableError, DurableModule, type DurableLogger,
} from '../../lib/index.js';
import { TcpProxy } from '../../devkit/tcp-proxy.js';
import { expectedResult, SteadyTask } from '../fixtures/steady-task.js';
import { eventually, LISTEN_CONNECTION, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { runFixture } from '../helpers/run-fixture.js';
import {
  adminUrl, createTestDatabase, durableConnections, serverChecksPasswords, terminateDurableBackends, type TestDatabase,
} from '../helpers/test-database.js';

const checksPasswords = await serverChecksPasswords();

const PASSWORD = 's3cr3t-pw';
/** How long a client call may take to give up on a database that stopped answering. */
const PARTITION_BOUND_MS = 25_000;

class CapturingLogger implements DurableLogger, LoggerService {
  readonly lines: string[] = [];
  log(...args: unknown[]) {
    this.lines.push(inspect(args, { depth: 6 }));
  }
  warn(...args: unknown[]) {
    this.lines.push(inspect(args, { depth: 6 }));
  }
  error(...args: unknown[]) {
    this.lines.push(inspect(args, { depth: 6 }));
  }
  debug(...args: unknown[]) {
    this.lines.push(inspect(args, { depth: 6 }));
  }
  verbose(...args: unknown[]) {
    this.lines.push(inspect(args, { depth: 6 }));
  }
}

/** Resolves with how the promise settled, or 'hung' after `ms`. */
async function settleWithin<T>(promise: Promise<T>, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<{ status: 'hung'; error: undefined }>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'hung', error: undefined }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ status: 'fulfilled' as const, value, error: undefined }),
        (error: unknown) => ({ status: 'rejected' as const, error: error as Error }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Everything an error carries (message, stack, cause, own properties), as text. */
const everythingOf = (error: unknown) => `${String(error)}\n${(error as Error)?.stack ?? ''}\n${inspect(error, { depth: 8, showHidden: true })}`;

let admin: pg.Pool;
beforeAll(() => {
  admin = sqlPool(adminUrl());
});
afterAll(async () => {
  await admin.end();
});

describe('backends terminated while tasks run', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  // Jest itself fails a test on an unhandled rejection or uncaught exception (process listeners
  // installed in a Jest test never fire); the child-process test below checks with real listeners.
  it('every task still completes and the app keeps working', async () => {
    t = await startApp(db.url, [SteadyTask], { worker: { leaseMs: 1500, concurrency: 4 } });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await t.client.spawn(SteadyTask, { i })).taskId);
    await eventually(async () => {
      const { rows } = await sql.query(`select count(*)::int as n from durable.checkpoints`);
      return rows[0].n > 0;
    }, 15_000, 'the first checkpoint');

    let killed = 0;
    for (let round = 0; round < 7; round++) {
      killed += await terminateDurableBackends(admin, db.name);
      await sleep(300);
    }
    expect(killed).toBeGreaterThan(0);

    await eventually(
      async () => {
        const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where state = 'completed'`);
        return rows[0].n === ids.length;
      },
      40_000,
      'every task to complete',
    );
    const { rows } = await sql.query(`select id, state, result from durable.tasks order by (params->>'i')::int`);
    expect(rows).toEqual(ids.map((id, i) => ({ id, state: 'completed', result: expectedResult(i) })));

    // The worker, the notifier and the client all came back.
    const after = await t.client.spawn(SteadyTask, { i: 100 });
    await expect(t.client.awaitResult(after.taskId, { timeoutMs: 20_000 })).resolves.toEqual(expectedResult(100));
    await t.close();
    t = undefined;
    await eventually(async () => (await durableConnections(admin, db.name)) === 0, 5000, 'no durable connections after close');
  });

  it('in a real process: no unhandledRejection or uncaughtException escapes, and every task completes', async () => {
    const { code, stdout, stderr } = await runFixture('module-reconnect-child.ts', [db.url, db.name], 50_000);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
      killed: number; results: unknown[]; afterResult: unknown; escaped: unknown[];
    };
    expect(report.escaped).toEqual([]);
    expect(report.killed).toBeGreaterThan(0);
    expect(report.results).toEqual(Array.from({ length: 10 }, (_, i) => expectedResult(i)));
    expect(report.afterResult).toEqual(expectedResult(99));
  }, 60_000);
});

describe('the LISTEN connection killed', () => {
  let db: TestDatabase;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
  });

  const listenerPids = async () =>
    (
      await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = $1 and application_name = 'nestjs-durable' and ${LISTEN_CONNECTION}`,
        [db.name],
      )
    ).rows.map((row) => row.pid);

  it('is re-established, and notifications wake the worker again', async () => {
    // A poll interval far beyond the test's waits: only a notification can start these tasks in time.
    t = await startApp(db.url, [SteadyTask], { worker: { pollIntervalMs: 60_000 } });
    const [first] = await eventually(async () => {
      const pids = await listenerPids();
      return pids.length === 1 ? pids : undefined;
    }, 10_000, 'the LISTEN connection');
    await sleep(300); // let the worker's first (empty) claim pass, so it is waiting on its poll interval
    const before = await t.client.spawn(SteadyTask, { i: 1 });
    await expect(t.client.awaitResult(before.taskId, { timeoutMs: 15_000 })).resolves.toEqual(expectedResult(1));

    await admin.query(`select pg_terminate_backend($1)`, [first]);
    await eventually(async () => {
      const pids = await listenerPids();
      return pids.length === 1 && pids[0] !== first;
    }, 15_000, 'a new LISTEN connection');
    await sleep(300);
    const after = await t.client.spawn(SteadyTask, { i: 2 });
    await expect(t.client.awaitResult(after.taskId, { timeoutMs: 15_000 })).resolves.toEqual(expectedResult(2));
  });
});

describe('a call whose connection is killed', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let client: DurableClient | undefined;
  const logger = new CapturingLogger();

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    client = await DurableClient.connect({ databaseUrl: db.url, logger });
  });
  afterAll(async () => {
    await client?.close();
    await sql?.end();
    await db?.drop();
  });

  /** Waits for durable's backend blocked on a lock, and terminates it. */
  async function killBlockedCall(): Promise<void> {
    const pid = await eventually(async () => {
      const { rows } = await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where datname = $1 and application_name = 'nestjs-durable' and wait_event_type = 'Lock'`,
        [db.name],
      );
      return rows[0]?.pid;
    }, 10_000, 'the blocked call');
    await admin.query(`select pg_terminate_backend($1)`, [pid]);
  }

  it('cancel() rejects with DatabaseUnavailableError instead of hanging, and the next call works', async () => {
    const { taskId } = await client!.spawn('idle', {}, { queue: 'nobody-polls' });
    const locker = await sql.connect();
    try {
      await locker.query('begin');
      await locker.query(`select 1 from durable.tasks where id = $1 for update`, [taskId]);
      const call = settleWithin(client!.cancel(taskId), 10_000);
      await killBlockedCall();
      const outcome = await call;
      expect(outcome.status).not.toBe('hung');
      if (outcome.status === 'rejected') expect(outcome.error).toBeInstanceOf(DatabaseUnavailableError);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    await client!.cancel(taskId);
    expect((await client!.getTask(taskId))!.state).toBe('cancelled');
  });

  it('spawn() rejects with DatabaseUnavailableError instead of hanging, and the next call works', async () => {
    const locker = await sql.connect();
    try {
      // An uncommitted spawn with the same idempotency key: durable's spawn waits for it.
      await locker.query('begin');
      await locker.query(
        `select * from durable.spawn_task('nobody-polls', 'idle', '{}', '{}', 1, '{"kind":"none"}', null, 'held-key', null, null)`,
      );
      const call = settleWithin(client!.spawn('idle', { n: 1 }, { queue: 'nobody-polls', idempotencyKey: 'held-key' }), 10_000);
      await killBlockedCall();
      const outcome = await call;
      expect(outcome.status).not.toBe('hung');
      if (outcome.status === 'rejected') expect(outcome.error).toBeInstanceOf(DatabaseUnavailableError);
    } finally {
      await locker.query('rollback');
      locker.release();
    }
    const spawned = await client!.spawn('idle', { n: 2 }, { queue: 'nobody-polls', idempotencyKey: 'held-key' });
    expect(spawned.created).toBe(true);
    expect((await client!.getTask(spawned.taskId))!.params).toEqual({ n: 2 });
  });
});

describe('an unreachable database', () => {
  const closedUrls = [
    `postgres://durable:${PASSWORD}@127.0.0.1:1/durable_db`,
    // Percent-encoded in the URL ('/'): neither form may leak.
    'postgres://durable:s3cr3t%2Fpw@127.0.0.1:1/durable_db',
  ];

  it('DatabaseUnavailableError is a DurableError', () => {
    const error = new DatabaseUnavailableError('down');
    expect(error).toBeInstanceOf(DurableError);
    expect(error.name).toBe('DatabaseUnavailableError');
  });

  it.each(closedUrls)('DurableClient.connect(%s) rejects with DatabaseUnavailableError within seconds, without the password', async (url) => {
    const logger = new CapturingLogger();
    const outcome = await settleWithin(DurableClient.connect({ databaseUrl: url, logger }), 15_000);
    if (outcome.status === 'fulfilled') await outcome.value.close();
    expect(outcome.status).toBe('rejected');
    expect(outcome.error).toBeInstanceOf(DatabaseUnavailableError);
    const text = everythingOf(outcome.error);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain('s3cr3t%2Fpw');
    expect(text).not.toContain('s3cr3t/pw');
    expect(logger.lines.join('\n')).not.toMatch(/s3cr3t/);
  });

  it('an app pointed at it fails to start with DatabaseUnavailableError, and no log line has the password', async () => {
    const logger = new CapturingLogger();
    const outcome = await settleWithin(
      Test.createTestingModule({ imports: [DurableModule.forRoot({ databaseUrl: closedUrls[0] })], providers: [SteadyTask] })
        .setLogger(logger)
        .compile()
        .then(async (moduleRef) => {
          await moduleRef.close();
          return moduleRef;
        }),
      15_000,
    );
    expect(outcome.status).toBe('rejected');
    expect(outcome.error).toBeInstanceOf(DatabaseUnavailableError);
    expect(everythingOf(outcome.error)).not.toContain(PASSWORD);
    expect(logger.lines.join('\n')).not.toContain(PASSWORD);
  });

  // Only a server that checks passwords can refuse one (the machine's PostgreSQL trusts local
  // connections; the embedded one checks them).
  (checksPasswords ? it : it.skip)('a wrong password on a live server is refused without echoing the password', async () => {
    const url = new URL(adminUrl());
    url.password = PASSWORD;
    const logger = new CapturingLogger();
    const outcome = await settleWithin(DurableClient.connect({ databaseUrl: url.toString(), logger }), 15_000);
    if (outcome.status === 'fulfilled') await outcome.value.close();
    expect(outcome.status).toBe('rejected');
    expect(outcome.error).toBeInstanceOf(Error);
    expect(everythingOf(outcome.error)).not.toContain(PASSWORD);
    expect(logger.lines.join('\n')).not.toContain(PASSWORD);
  });
});

describe('the database going away and coming back (through a proxy)', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let proxy: TcpProxy;
  let proxiedUrl: string | undefined;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    const target = new URL(db.url);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
  });
  afterEach(async () => {
    proxy.restore();
    await t?.close();
    t = undefined;
  });
  afterAll(async () => {
    await proxy?.close();
    await sql?.end();
    await db?.drop();
  });

  it('client calls reject while it is gone; in-flight tasks finish once it is back', async () => {
    const url = new URL((proxiedUrl ??= await proxy.listen(db.url)));
    t = await startApp(url.toString(), [SteadyTask], { worker: { leaseMs: 1500, concurrency: 3 } });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await t.client.spawn(SteadyTask, { i })).taskId);
    await eventually(async () => {
      const { rows } = await sql.query(`select count(*)::int as n from durable.checkpoints`);
      return rows[0].n > 0;
    }, 15_000, 'the first checkpoint');

    proxy.down();
    const spawn = await settleWithin(t.client.spawn(SteadyTask, { i: 50 }), 10_000);
    expect(spawn.status).toBe('rejected');
    expect(spawn.error).toBeInstanceOf(DatabaseUnavailableError);
    const read = await settleWithin(t.client.getTask(ids[0]), 10_000);
    expect(read.status).toBe('rejected');
    expect(read.error).toBeInstanceOf(DatabaseUnavailableError);
    const emit = await settleWithin(t.client.emitEvent('while-down'), 10_000);
    expect(emit.status).toBe('rejected');
    expect(emit.error).toBeInstanceOf(DatabaseUnavailableError);
    await sleep(1500);
    proxy.restore();

    await eventually(
      async () => {
        const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where state = 'completed'`);
        return rows[0].n === ids.length;
      },
      40_000,
      'every task to complete after the database came back',
    );
    const { rows } = await sql.query(`select id, result from durable.tasks where id = any($1) order by (params->>'i')::int`, [ids]);
    expect(rows).toEqual(ids.map((id, i) => ({ id, result: expectedResult(i) })));
    // The spawn that was refused wrote nothing.
    const refused = await sql.query(`select count(*)::int as n from durable.tasks where params->>'i' = '50'`);
    expect(refused.rows[0].n).toBe(0);

    const after = await t.client.spawn(SteadyTask, { i: 60 });
    await expect(t.client.awaitResult(after.taskId, { timeoutMs: 20_000 })).resolves.toEqual(expectedResult(60));
    const closing = await settleWithin(t.close(), 15_000);
    t = undefined;
    expect(closing.status).toBe('fulfilled');
  }, 60_000);

  it('client calls reject instead of hanging during a network partition, and work again after it', async () => {
    const url = new URL((proxiedUrl ??= await proxy.listen(db.url)));
    t = await startApp(url.toString(), [SteadyTask], { worker: false });
    const { taskId } = await t.client.spawn(SteadyTask, { i: 80 });
    expect((await t.client.getTask(taskId))!.state).toBe('pending');

    proxy.freeze();
    // The pool has idle connections that look alive: a call on one must still end.
    const calls = await Promise.all([
      settleWithin(t.client.getTask(taskId), PARTITION_BOUND_MS),
      settleWithin(t.client.spawn(SteadyTask, { i: 81 }), PARTITION_BOUND_MS),
    ]);
    expect(calls.map((call) => call.status)).toEqual(['rejected', 'rejected']);
    // A statement sent on a pooled connection was never answered: its outcome is unknown (it
    // may have committed). One that needed a new connection never reached the server.
    for (const call of calls) {
      expect([DatabaseUnavailableError, OutcomeUnknownError].some((type) => call.error instanceof type)).toBe(true);
    }

    proxy.restore();
    await eventually(async () => {
      try {
        return (await t!.client.getTask(taskId))?.state === 'pending';
      } catch {
        return false;
      }
    }, 20_000, 'the client to work again');
  }, PARTITION_BOUND_MS + 30_000);

  it('app.close() does not hang while the database is gone', async () => {
    const url = new URL((proxiedUrl ??= await proxy.listen(db.url)));
    t = await startApp(url.toString(), [SteadyTask], { worker: { leaseMs: 1500 } });
    const { taskId } = await t.client.spawn(SteadyTask, { i: 70 });
    await eventually(async () => {
      const { rows } = await sql.query(`select count(*)::int as n from durable.checkpoints where task_id = $1`, [taskId]);
      return rows[0].n > 0;
    }, 15_000, 'the task to start');
    proxy.down();
    await sleep(300);
    const closing = await settleWithin(t.close(), 20_000);
    t = undefined;
    expect(closing.status).toBe('fulfilled');
  }, 40_000);
});

