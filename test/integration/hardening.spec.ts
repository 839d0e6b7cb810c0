/**
 * The smaller holes of issue 13, item 7 (database and worker side), one block each: a worker
 * without the handler leaves the cancellation clocks as they were; `cleanup` removes events
 * nobody needs; any thrown value can be recorded, with bounded text; the SQL functions resolve
 * names only in pg_catalog; the test clock exists only where a test installs it; and a ctx call
 * from inside a step's function is refused.
 */
import type pg from 'pg';
import {
  DurableClient, DurableTask, InvalidArgumentError, type DurableLogger, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { advanceClock, eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };
const HOUR = 3_600_000;

async function failedTask(t: DurableTestApp, taskId: string) {
  return eventually(async () => {
    const task = await t.client.getTask(taskId);
    return task?.state === 'failed' ? task : undefined;
  }, 15_000, `task ${taskId} to fail`);
}

// ---- (a) a worker without the handler ------------------------------------------------------------

describe('a task claimed by a worker without its handler', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [], { worker: { queues: ['ghost-q'], unknownTaskDelayMs: 600_000 } });
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  it('is still cancelled by maxDelayMs, and its maxDurationMs clock has not started', async () => {
    const { taskId, runId } = await t.client.spawn('ghost', {}, { queue: 'ghost-q', cancellation: { maxDelayMs: 60_000, maxDurationMs: HOUR } });
    // Claimed and put back for 10 minutes or more.
    await eventually(async () => {
      const { rows } = await sql.query(`select 1 from durable.runs where id = $1 and state = 'pending' and available_at > durable.now() + interval '5 minutes'`, [runId]);
      return rows.length === 1;
    }, 10_000, 'the run to be put back');
    const { rows: [task] } = await sql.query(
      `select first_started_at, (extract(epoch from cancel_at - created_at) * 1000)::float8 as cancel_after_ms from durable.tasks where id = $1`, [taskId],
    );
    expect(task).toEqual({ first_started_at: null, cancel_after_ms: 60_000 });
    const { rows: [run] } = await sql.query(`select started_at is not null as claimed, worker_id, attempt from durable.runs where id = $1`, [runId]);
    expect(run).toEqual({ claimed: true, worker_id: null, attempt: 1 });

    await advanceClock(sql, 61_000);
    const cancelled = await eventually(async () => {
      const snapshot = await t.client.getTask(taskId);
      return snapshot?.state === 'cancelled' ? snapshot : undefined;
    }, 10_000, 'the maxDelayMs policy to cancel it');
    expect(cancelled.error?.message).toMatch(/not started within maxDelayMs/);
  });
});

// ---- (c) cleanup of events -----------------------------------------------------------------------

@DurableTask({ name: 'ev-waiter' })
class EventWaiterTask implements DurableTaskHandler<unknown, unknown> {
  async run(_params: unknown, ctx: TaskContext) {
    return ctx.awaitEvent('ev-waited');
  }
}

@DurableTask({ name: 'ev-impatient' })
class ImpatientTask implements DurableTaskHandler<unknown, unknown> {
  async run(_params: unknown, ctx: TaskContext) {
    return ctx.awaitEvent('ev-timed-out', { timeoutMs: 1_000 });
  }
}

describe('cleanup of events', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [EventWaiterTask, ImpatientTask]);
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  const events = async () => (await sql.query(`select name, emitted_at is not null as emitted from durable.events order by name`)).rows;

  it('deletes placeholders no wait needs and events emitted before olderThanMs; keeps the rest', async () => {
    const waiter = await t.client.spawn(EventWaiterTask, {});
    const impatient = await t.client.spawn(ImpatientTask, {});
    await eventually(async () => (await sql.query(`select 1 from durable.waits`)).rows.length === 2, 10_000, 'both to wait');
    await t.client.emitEvent('ev-old', { v: 1 });
    await advanceClock(sql, 2 * HOUR);
    await failedTask(t, impatient.taskId); // timed out: its wait is gone, its placeholder stays
    await t.client.emitEvent('ev-new', { v: 2 });
    expect(await events()).toEqual([
      { name: 'ev-new', emitted: true }, { name: 'ev-old', emitted: true },
      { name: 'ev-timed-out', emitted: false }, { name: 'ev-waited', emitted: false },
    ]);

    await expect(t.client.cleanup({ olderThanMs: HOUR })).resolves.toBe(0);
    expect(await events()).toEqual([{ name: 'ev-new', emitted: true }, { name: 'ev-waited', emitted: false }]);

    // The placeholder kept for the waiter still works.
    await t.client.emitEvent('ev-waited', 'here');
    await expect(t.client.awaitResult(waiter.taskId, { timeoutMs: 10_000 })).resolves.toBe('here');
    await expect(t.client.cleanup({ olderThanMs: 0, queue: 'another-queue' })).resolves.toBe(0);
    expect((await events()).map((row) => row.name)).toEqual(['ev-new', 'ev-waited']);
  });
});

// ---- (d) what a failure records ------------------------------------------------------------------

@DurableTask({ name: 'throws', retry: { kind: 'none' } })
class ThrowsTask implements DurableTaskHandler<{ kind: string }, never> {
  async run(params: { kind: string }): Promise<never> {
    if (params.kind === 'numeric-name') {
      const error = new Error('numeric name');
      (error as { name: unknown }).name = 42;
      throw error;
    }
    if (params.kind === 'getter') {
      const error = new Error('getter');
      Object.defineProperty(error, 'message', { get() { throw new Error('no message for you'); } });
      throw error;
    }
    if (params.kind === 'null-prototype') throw Object.create(null);
    throw new Error(`huge ${'é'.repeat(100_000)}`);
  }
}

describe('recording a failure', () => {
  let db: TestDatabase;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [ThrowsTask], { worker: { leaseMs: 60_000 } });
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
  });

  it('works for any thrown value: a non-string name, a throwing getter, an object without prototype', async () => {
    const numeric = await failedTask(t, (await t.client.spawn(ThrowsTask, { kind: 'numeric-name' })).taskId);
    expect(numeric.error).toMatchObject({ name: '42', message: 'numeric name' });
    const getter = await failedTask(t, (await t.client.spawn(ThrowsTask, { kind: 'getter' })).taskId);
    expect(getter.error).toMatchObject({ name: 'Error', message: expect.stringMatching(/unreadable/) });
    const bare = await failedTask(t, (await t.client.spawn(ThrowsTask, { kind: 'null-prototype' })).taskId);
    expect(bare.error).toMatchObject({ name: 'Error', message: '{}' });
  });

  it('caps the message at 8 KiB and the stack at 32 KiB, and says so', async () => {
    const huge = await failedTask(t, (await t.client.spawn(ThrowsTask, { kind: 'huge' })).taskId);
    const error = huge.error as unknown as { message: string; stack: string; truncated?: unknown };
    expect(Buffer.byteLength(error.message)).toBeLessThanOrEqual(8 * 1024);
    expect(Buffer.byteLength(error.stack)).toBeLessThanOrEqual(32 * 1024);
    expect(error.message).toMatch(/^huge éé/);
    expect(error.message).toMatch(/\[truncated: \d+ bytes in all\]$/);
    expect(error.truncated).toEqual({ message: expect.any(Number), stack: expect.any(Number) });
  });
});

// ---- (e) and (f) the functions' search_path, and the test clock ---------------------------------

describe('the SQL functions of a production schema', () => {
  let db: TestDatabase;
  let sql: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url, { max: 1 });
    const client = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
    await client.close();
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it('all pin search_path to pg_catalog, pg_temp', async () => {
    const { rows } = await sql.query(`
      select p.proname, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'durable' order by p.proname`);
    expect(rows.length).toBeGreaterThanOrEqual(20);
    const unpinned = rows.filter((row) => !(row.proconfig ?? []).includes('search_path=pg_catalog, pg_temp')).map((row) => row.proname);
    expect(unpinned).toEqual([]);
  });

  it('are not taken over by a function of a schema earlier in the caller\'s search_path', async () => {
    const client = await sql.connect();
    try {
      await client.query(`create schema evil`);
      await client.query(`create function evil.clock_timestamp() returns timestamptz language sql as $$ select '2000-01-01'::timestamptz $$`);
      await client.query(`create function evil.gen_random_uuid() returns uuid language sql as $$ select '00000000-0000-4000-8000-000000000000'::uuid $$`);
      await client.query(`set search_path = evil, pg_catalog, public`);
      const { rows: [now] } = await client.query(`select durable.now() as now`);
      expect((now.now as Date).getUTCFullYear()).toBeGreaterThan(2020);
      const { rows: [spawned] } = await client.query(
        `select * from durable.spawn_task('evil-q', 'x', '{}', '{}', 1, '{"kind":"none"}', null, null, null, null)`,
      );
      expect(spawned.task_id).not.toBe('00000000-0000-4000-8000-000000000000');
    } finally {
      await client.query(`reset search_path`);
      client.release();
    }
  });

  it('read the real clock, whatever a session sets, until a test installs the test clock', async () => {
    const drift = async () => {
      const { rows: [row] } = await sql.query(`select (extract(epoch from durable.now() - clock_timestamp()) * 1000)::float8 as ms`);
      return row.ms as number;
    };
    await sql.query(`insert into durable.test_clock (id, offset_ms) values (true, $1)`, [HOUR]);
    await sql.query(`set durable.test_clock = 'on'`);
    expect(Math.abs(await drift())).toBeLessThan(60_000);
    const { rows: [fn] } = await sql.query(`select prosrc from pg_proc where oid = 'durable.now()'::regprocedure`);
    expect(fn.prosrc).not.toMatch(/test_clock/);

    // The tests' clock (devkit's advanceTestClock, the testing kit's advanceClock) installs itself.
    await advanceClock(sql, 1_000);
    expect(await drift()).toBeGreaterThanOrEqual(HOUR + 1_000 - 1);
  });
});

// ---- (g) nested ctx calls ------------------------------------------------------------------------

const nestedErrors = new Map<string, unknown[]>();

@DurableTask({ name: 'nested' })
class NestedTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    const errors: unknown[] = [];
    nestedErrors.set(ctx.taskId, errors);
    const outer = await ctx.step('outer', async () => {
      for (const call of [
        () => ctx.step('inner', () => 1),
        () => ctx.sleepFor('inner-sleep', 1),
        () => ctx.emitEvent('inner-emit'),
        () => ctx.awaitEvent('inner-event', { timeoutMs: 1 }),
      ]) {
        try {
          await call();
          errors.push('no error');
        } catch (error) {
          errors.push(error);
        }
      }
      await ctx.heartbeat(); // allowed: it writes no checkpoint
      return 'outer';
    });
    return `${outer}+${await ctx.step('after', () => 'after')}`;
  }
}

describe('ctx calls from inside a step\'s function', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [NestedTask]);
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  it('are refused with InvalidArgumentError (heartbeat excepted), and leave the numbering of steps alone', async () => {
    const { taskId } = await t.client.spawn(NestedTask, {});
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe('outer+after');
    const errors = nestedErrors.get(taskId)!;
    expect(errors).toHaveLength(4);
    for (const error of errors) {
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/inside the function of step "outer"/);
    }
    const { rows } = await sql.query(`select name from durable.checkpoints where task_id = $1 order by name`, [taskId]);
    expect(rows.map((row) => row.name)).toEqual(['step:after', 'step:outer']);
  });
});
