/**
 * DurableClient.spawn: ids, idempotency keys, delayed starts, option precedence, spawning and
 * emitting inside a TypeORM transaction, refusal of bad input, and names treated as data.
 */
import type pg from 'pg';
import { DataSource } from 'typeorm';
import {
  InvalidArgumentError, SerializationError,
  type DurableTaskHandler, type DurableTaskOptions, type SpawnResult, type TaskContext,
} from '../../lib/index.js';
import { advanceClock, eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { durableTask } from '../helpers/durable-task.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HOUR = 3_600_000;

/** Handler executions by task id. */
const executions = new Map<string, number>();
function executed(taskId: string): number {
  return executions.get(taskId) ?? 0;
}
function countExecution(ctx: TaskContext): void {
  executions.set(ctx.taskId, executed(ctx.taskId) + 1);
}

/** A handler that counts its execution and returns `result` (or what `result(ctx)` gives). */
function countingTask(className: string, options: DurableTaskOptions, result: string | ((ctx: TaskContext) => string)) {
  return durableTask(className, options, (_params: unknown, ctx: TaskContext) => {
    countExecution(ctx);
    return typeof result === 'string' ? result : result(ctx);
  });
}

interface Echo {
  params: unknown;
  headers: Record<string, unknown>;
  taskId: string;
  runId: string;
  attempt: number;
  queue: string;
  taskName: string;
}

function echo(params: unknown, ctx: TaskContext): Echo {
  countExecution(ctx);
  return {
    params, headers: { ...ctx.headers }, taskId: ctx.taskId, runId: ctx.runId, attempt: ctx.attempt,
    queue: ctx.queue, taskName: ctx.taskName,
  };
}

const EchoTask = durableTask('EchoTask', { name: 'spawn-echo' }, echo);

const WaiterTask = durableTask('WaiterTask', { name: 'spawn-waiter' }, (params: { event: string }, ctx: TaskContext) => {
  countExecution(ctx);
  return ctx.awaitEvent(params.event);
});

// ---- names are data ------------------------------------------------------------------------
const INJECTION = `'; drop table durable.tasks; --`;
const INJECTION_QUEUE = `q"; drop table durable.runs; --`;
const UNICODE = 'tâche 😀 名前';
const UNICODE_QUEUE = 'файл-очередь ✓';

const InjectionNameTask = countingTask('InjectionNameTask', { name: INJECTION }, 'injection handler');
const UnicodeNameTask = countingTask('UnicodeNameTask', { name: UNICODE }, 'unicode handler');
const UpperCaseTask = countingTask('UpperCaseTask', { name: 'CaseTask' }, 'CaseTask handler');
const LowerCaseTask = countingTask('LowerCaseTask', { name: 'casetask' }, 'casetask handler');
const PaddedNameTask = countingTask('PaddedNameTask', { name: 'padded ' }, 'padded handler');
const UnpaddedNameTask = countingTask('UnpaddedNameTask', { name: 'padded' }, 'unpadded handler');
const InjectionQueueTask = countingTask(
  'InjectionQueueTask', { name: 'queued', queue: INJECTION_QUEUE }, (ctx) => `injection-queue handler on ${ctx.queue}`,
);
const UnicodeQueueTask = countingTask(
  'UnicodeQueueTask', { name: 'queued', queue: UNICODE_QUEUE }, (ctx) => `unicode-queue handler on ${ctx.queue}`,
);

// ---- precedence ----------------------------------------------------------------------------
const PRECEDENCE_QUEUE = 'precedence';

const PrecPlainTask = durableTask('PrecPlainTask', { name: 'prec-plain' });
const PrecDecoratedTask = durableTask('PrecDecoratedTask', {
  name: 'prec-decorated',
  maxAttempts: 3,
  retry: { kind: 'fixed', delayMs: 2222 },
  cancellation: { maxDelayMs: 9000 },
});
const PrecPartialTask = durableTask('PrecPartialTask', { name: 'prec-partial', retry: { kind: 'fixed', delayMs: 3333 } });

class UndecoratedTask implements DurableTaskHandler<unknown, void> {
  async run() {}
}

// ---- helpers -------------------------------------------------------------------------------

async function countRows(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query(`
    select (select count(*) from durable.tasks)::int as tasks, (select count(*) from durable.runs)::int as runs,
      (select count(*) from durable.checkpoints)::int as checkpoints, (select count(*) from durable.events)::int as events,
      (select count(*) from durable.waits)::int as waits, (select count(*) from durable.queues)::int as queues`);
  return rows[0];
}

async function taskRow(pool: pg.Pool, taskId: string) {
  const { rows } = await pool.query('select * from durable.tasks where id = $1', [taskId]);
  expect(rows).toHaveLength(1);
  return rows[0];
}

async function runsOf(pool: pg.Pool, taskId: string) {
  const { rows } = await pool.query('select * from durable.runs where task_id = $1 order by attempt', [taskId]);
  return rows;
}

async function rejectionOf(call: () => Promise<unknown>): Promise<Error> {
  return call().then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error as Error,
  );
}

// =============================================================================================

describe('spawn (real Postgres)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let producer: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(
      db.url,
      [
        EchoTask, WaiterTask, InjectionNameTask, UnicodeNameTask, UpperCaseTask, LowerCaseTask, PaddedNameTask,
        UnpaddedNameTask, InjectionQueueTask, UnicodeQueueTask,
      ],
      { worker: { queues: ['default', INJECTION_QUEUE, UNICODE_QUEUE] } },
    );
    // A second process's client: producer only, its own connection pool.
    producer = await startApp(db.url, [], { worker: false });
  });
  afterAll(async () => {
    await producer?.close();
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('gives tasks and runs version 7 ids, in the order they were made (migration 0014)', async () => {
    const first = await t.client.spawn(EchoTask, { order: 1 });
    await sleep(5);
    const batch = await Promise.all([2, 3, 4].map((order) => producer.client.spawn(EchoTask, { order })));
    await sleep(5);
    const last = await t.client.spawn(EchoTask, { order: 5 });
    const ids = [first, ...batch, last].flatMap((spawned) => [spawned.taskId, spawned.runId]);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // The first 48 bits are the wall clock in milliseconds: ids made later sort after.
    const millis = (id: string) => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
    expect(Math.abs(millis(first.taskId) - Date.now())).toBeLessThan(60_000);
    for (const spawned of batch) expect(millis(spawned.taskId)).toBeGreaterThan(millis(first.taskId));
    for (const spawned of batch) expect(millis(last.taskId)).toBeGreaterThan(millis(spawned.taskId));
  });

  describe('SpawnResult', () => {
    async function checkSpawn(spawned: SpawnResult, name: string, params: unknown) {
      expect(Object.keys(spawned).sort()).toEqual(['attempt', 'created', 'runId', 'taskId']);
      expect(spawned.taskId).toMatch(UUID);
      expect(spawned.runId).toMatch(UUID);
      expect(spawned.runId).not.toBe(spawned.taskId);
      expect(spawned.attempt).toBe(1);
      expect(spawned.created).toBe(true);

      const runs = await runsOf(pool, spawned.taskId);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ id: spawned.runId, attempt: 1 });

      const result = await t.client.awaitResult<Echo>(spawned.taskId, { timeoutMs: 20_000 });
      expect(result).toStrictEqual({
        params, headers: {}, taskId: spawned.taskId, runId: spawned.runId, attempt: 1, queue: 'default', taskName: name,
      });
      expect(await taskRow(pool, spawned.taskId)).toMatchObject({
        name, queue: 'default', state: 'completed', attempts: 1, run_id: spawned.runId, params,
      });
      expect(executed(spawned.taskId)).toBe(1);
    }

    it('spawns by class', async () => {
      await checkSpawn(await t.client.spawn(EchoTask, { by: 'class' }), 'spawn-echo', { by: 'class' });
    });

    it('spawns by name', async () => {
      await checkSpawn(await t.client.spawn('spawn-echo', { by: 'name' }), 'spawn-echo', { by: 'name' });
    });

    it('spawns by name from a process without the handler, and the worker runs it', async () => {
      await checkSpawn(await producer.client.spawn('spawn-echo', [1, 2, 3]), 'spawn-echo', [1, 2, 3]);
    });

    it('gives every spawn its own task and run ids', async () => {
      const spawned = await Promise.all([1, 2, 3].map((i) => t.client.spawn(EchoTask, { i })));
      expect(new Set(spawned.map((s) => s.taskId)).size).toBe(3);
      expect(new Set(spawned.map((s) => s.runId)).size).toBe(3);
      await Promise.all(spawned.map((s) => t.client.awaitResult(s.taskId, { timeoutMs: 20_000 })));
    });
  });

  describe('idempotency keys', () => {
    it('returns the existing task for the same key, with created false and one row', async () => {
      const first = await t.client.spawn(EchoTask, { n: 1 }, { idempotencyKey: 'order-1' });
      const second = await t.client.spawn(EchoTask, { n: 2 }, { idempotencyKey: 'order-1' });
      expect(first.created).toBe(true);
      expect(second).toEqual({ taskId: first.taskId, runId: first.runId, attempt: 1, created: false });

      const { rows } = await pool.query('select id, params from durable.tasks where idempotency_key = $1', ['order-1']);
      expect(rows).toEqual([{ id: first.taskId, params: { n: 1 } }]);

      // Still deduplicated once the task has completed.
      await expect(t.client.awaitResult<Echo>(first.taskId, { timeoutMs: 20_000 })).resolves.toMatchObject({ params: { n: 1 } });
      const third = await t.client.spawn('spawn-echo', { n: 3 }, { idempotencyKey: 'order-1' });
      expect(third).toEqual({ taskId: first.taskId, runId: first.runId, attempt: 1, created: false });
      const after = await pool.query('select id, state from durable.tasks where idempotency_key = $1', ['order-1']);
      expect(after.rows).toEqual([{ id: first.taskId, state: 'completed' }]);
      expect(await runsOf(pool, first.taskId)).toHaveLength(1);
      await sleep(600);
      expect(executed(first.taskId)).toBe(1);
    });

    it('treats the same key on another queue as another task', async () => {
      const onDefault = await t.client.spawn('spawn-echo', {}, { idempotencyKey: 'shared-key' });
      const onOther = await t.client.spawn('spawn-echo', {}, { idempotencyKey: 'shared-key', queue: 'other-queue' });
      expect(onOther.created).toBe(true);
      expect(onOther.taskId).not.toBe(onDefault.taskId);
      const again = await t.client.spawn('spawn-echo', {}, { idempotencyKey: 'shared-key', queue: 'other-queue' });
      expect(again).toEqual({ ...onOther, created: false });
      const { rows } = await pool.query(
        'select id, queue from durable.tasks where idempotency_key = $1 order by queue', ['shared-key'],
      );
      expect(rows).toEqual([{ id: onDefault.taskId, queue: 'default' }, { id: onOther.taskId, queue: 'other-queue' }]);
    });

    it('creates exactly one task for 50 concurrent spawns with one key from two clients', async () => {
      const spawned = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          (i % 2 === 0 ? t.client : producer.client).spawn('spawn-echo', { i }, { idempotencyKey: 'race-key' }),
        ),
      );
      const taskIds = new Set(spawned.map((s) => s.taskId));
      expect(taskIds.size).toBe(1);
      expect(new Set(spawned.map((s) => s.runId)).size).toBe(1);
      expect(spawned.filter((s) => s.created)).toHaveLength(1);
      const [taskId] = taskIds;
      const { rows } = await pool.query('select id from durable.tasks where idempotency_key = $1', ['race-key']);
      expect(rows).toEqual([{ id: taskId }]);
      expect(await runsOf(pool, taskId)).toHaveLength(1);
      await t.client.awaitResult(taskId, { timeoutMs: 20_000 });
      expect(executed(taskId)).toBe(1);
    });
  });

  describe('transactions (TypeORM EntityManager)', () => {
    let dataSource: DataSource;
    beforeAll(async () => {
      dataSource = new DataSource({ type: 'postgres', url: db.url });
      await dataSource.initialize();
    });
    afterAll(async () => {
      if (dataSource?.isInitialized) await dataSource.destroy();
    });

    it('a committed spawn exists (only after the commit) and runs', async () => {
      let insideCount = -1;
      const spawned = await dataSource.transaction(async (manager) => {
        const result = await t.client.spawn(EchoTask, { tx: 'commit' }, { manager });
        // Not visible outside the transaction before it commits.
        const { rows } = await pool.query('select count(*)::int as n from durable.tasks where id = $1', [result.taskId]);
        insideCount = rows[0].n;
        return result;
      });
      expect(insideCount).toBe(0);
      expect(spawned.created).toBe(true);
      await expect(t.client.awaitResult<Echo>(spawned.taskId, { timeoutMs: 20_000 })).resolves.toMatchObject({
        params: { tx: 'commit' }, runId: spawned.runId,
      });
      expect(await runsOf(pool, spawned.taskId)).toHaveLength(1);
    });

    it('a rolled-back spawn leaves no task and no run', async () => {
      const before = await countRows(pool);
      let spawned: SpawnResult | undefined;
      await expect(
        dataSource.transaction(async (manager) => {
          spawned = await t.client.spawn(EchoTask, { tx: 'rollback' }, { manager, idempotencyKey: 'tx-rollback', queue: 'tx-only-queue' });
          throw new Error('roll it back');
        }),
      ).rejects.toThrow('roll it back');
      expect(spawned?.taskId).toMatch(UUID);
      await sleep(600); // a few poll intervals
      expect(await countRows(pool)).toEqual(before);
      const tasks = await pool.query('select count(*)::int as n from durable.tasks where id = $1 or idempotency_key = $2', [spawned!.taskId, 'tx-rollback']);
      expect(tasks.rows[0].n).toBe(0);
      const runs = await pool.query('select count(*)::int as n from durable.runs where task_id = $1', [spawned!.taskId]);
      expect(runs.rows[0].n).toBe(0);
      const queues = await pool.query('select count(*)::int as n from durable.queues where name = $1', ['tx-only-queue']);
      expect(queues.rows[0].n).toBe(0);
      expect(executed(spawned!.taskId)).toBe(0);
      expect(await t.client.getTask(spawned!.taskId)).toBeNull();

      // The key is free again: a committed spawn with it creates the task.
      const real = await t.client.spawn(EchoTask, { tx: 'after' }, { idempotencyKey: 'tx-rollback', queue: 'tx-only-queue' });
      expect(real.created).toBe(true);
      expect(real.taskId).not.toBe(spawned!.taskId);
    });

    it('a rolled-back emitEvent wakes no waiter; a committed one wakes it', async () => {
      const event = 'tx-event';
      const { taskId } = await t.client.spawn(WaiterTask, { event });
      await eventually(async () => {
        const { rows } = await pool.query(`select count(*)::int as n from durable.waits where task_id = $1 and event_name = $2`, [taskId, event]);
        return rows[0].n === 1;
      }, 15_000, 'the waiter to wait');
      expect((await taskRow(pool, taskId)).state).toBe('sleeping');

      await expect(
        dataSource.transaction(async (manager) => {
          await t.client.emitEvent(event, { v: 'rolled back' }, { manager });
          throw new Error('roll the emit back');
        }),
      ).rejects.toThrow('roll the emit back');
      await sleep(800);
      const placeholder = await pool.query('select payload, emitted_at from durable.events where queue = $1 and name = $2', ['default', event]);
      expect(placeholder.rows).toEqual([{ payload: null, emitted_at: null }]);
      expect((await taskRow(pool, taskId)).state).toBe('sleeping');
      const waits = await pool.query('select count(*)::int as n from durable.waits where task_id = $1', [taskId]);
      expect(waits.rows[0].n).toBe(1);
      const checkpoints = await pool.query('select count(*)::int as n from durable.checkpoints where task_id = $1', [taskId]);
      expect(checkpoints.rows[0].n).toBe(0);
      expect(executed(taskId)).toBe(1);

      let stillWaitingInside = false;
      await dataSource.transaction(async (manager) => {
        await t.client.emitEvent(event, { v: 'committed' }, { manager });
        const { rows } = await pool.query('select count(*)::int as n from durable.waits where task_id = $1', [taskId]);
        stillWaitingInside = rows[0].n === 1;
      });
      expect(stillWaitingInside).toBe(true);
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toEqual({ v: 'committed' });
      const emitted = await pool.query('select payload, emitted_at is not null as emitted from durable.events where queue = $1 and name = $2', ['default', event]);
      expect(emitted.rows).toEqual([{ payload: { v: 'committed' }, emitted: true }]);
    });
  });

  describe('names are data', () => {
    it('stores and runs a task named like SQL injection', async () => {
      const { taskId } = await t.client.spawn(INJECTION, {});
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('injection handler');
      expect((await taskRow(pool, taskId)).name).toBe(INJECTION);
      const byClass = await t.client.spawn(InjectionNameTask, {});
      await expect(t.client.awaitResult(byClass.taskId, { timeoutMs: 20_000 })).resolves.toBe('injection handler');
      const { rows } = await pool.query('select count(*)::int as n from durable.tasks');
      expect(rows[0].n).toBeGreaterThan(0);
    });

    it('stores and runs a task with a unicode name', async () => {
      const { taskId } = await t.client.spawn(UNICODE, {});
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('unicode handler');
      expect((await taskRow(pool, taskId)).name).toBe(UNICODE);
      expect((await t.client.getTask(taskId))?.name).toBe(UNICODE);
    });

    it('does not fold case or trim task names', async () => {
      const cases: [string, string][] = [
        ['CaseTask', 'CaseTask handler'], ['casetask', 'casetask handler'], ['padded ', 'padded handler'], ['padded', 'unpadded handler'],
      ];
      const spawned = await Promise.all(cases.map(([name]) => t.client.spawn(name, {})));
      for (const [i, [name, expected]] of cases.entries()) {
        await expect(t.client.awaitResult(spawned[i].taskId, { timeoutMs: 20_000 })).resolves.toBe(expected);
        expect((await taskRow(pool, spawned[i].taskId)).name).toBe(name);
      }
      const byClass = await t.client.spawn(UpperCaseTask, {});
      await expect(t.client.awaitResult(byClass.taskId, { timeoutMs: 20_000 })).resolves.toBe('CaseTask handler');
    });

    it('stores and polls queues named like SQL injection or in unicode; one task name on two queues is two handlers', async () => {
      const onInjection = await t.client.spawn('queued', {}, { queue: INJECTION_QUEUE });
      const onUnicode = await t.client.spawn(UnicodeQueueTask, {});
      await expect(t.client.awaitResult(onInjection.taskId, { timeoutMs: 20_000 })).resolves.toBe(`injection-queue handler on ${INJECTION_QUEUE}`);
      await expect(t.client.awaitResult(onUnicode.taskId, { timeoutMs: 20_000 })).resolves.toBe(`unicode-queue handler on ${UNICODE_QUEUE}`);
      expect((await taskRow(pool, onInjection.taskId)).queue).toBe(INJECTION_QUEUE);
      expect((await taskRow(pool, onUnicode.taskId)).queue).toBe(UNICODE_QUEUE);
      expect((await runsOf(pool, onInjection.taskId))[0].queue).toBe(INJECTION_QUEUE);
      expect(await t.client.listQueues()).toEqual(expect.arrayContaining([INJECTION_QUEUE, UNICODE_QUEUE]));

      // A queue differing only in case is another queue, which this worker does not poll.
      const upper = await t.client.spawn('spawn-echo', {}, { queue: 'DEFAULT' });
      await sleep(600);
      expect(await taskRow(pool, upper.taskId)).toMatchObject({ queue: 'DEFAULT', state: 'pending' });
      expect(executed(upper.taskId)).toBe(0);
    });

    it('matches idempotency keys exactly: no case folding, trimming or unicode normalisation', async () => {
      const keys = [INJECTION, INJECTION.toUpperCase(), 'k', 'k ', 'K', 'caf\u00e9', 'cafe\u0301', 'clé 😀'];
      const first = await Promise.all(keys.map((idempotencyKey) => t.client.spawn('spawn-echo', {}, { idempotencyKey })));
      expect(first.every((s) => s.created)).toBe(true);
      expect(new Set(first.map((s) => s.taskId)).size).toBe(keys.length);
      const second = await Promise.all(keys.map((idempotencyKey) => t.client.spawn('spawn-echo', {}, { idempotencyKey })));
      for (const [i, key] of keys.entries()) {
        expect(second[i]).toEqual({ ...first[i], created: false });
        expect((await taskRow(pool, first[i].taskId)).idempotency_key).toBe(key);
      }
      const { rows } = await pool.query('select count(*)::int as n from durable.tasks where idempotency_key = any($1)', [keys]);
      expect(rows[0].n).toBe(keys.length);
    });

    it('passes header keys through exactly', async () => {
      const headers = { [INJECTION]: 1, 'X-Trace': 'upper', 'x-trace': 'lower', 'x-trace ': 'padded', 'clé 😀': true };
      const { taskId } = await t.client.spawn(EchoTask, {}, { headers });
      const result = await t.client.awaitResult<Echo>(taskId, { timeoutMs: 20_000 });
      expect(result.headers).toStrictEqual(headers);
      expect((await taskRow(pool, taskId)).headers).toStrictEqual(headers);
    });
  });

  describe('precedence of options', () => {
    let prec: DurableTestApp;
    beforeAll(async () => {
      prec = await startApp(db.url, [PrecPlainTask, PrecDecoratedTask, PrecPartialTask], {
        queue: PRECEDENCE_QUEUE,
        worker: false,
        defaults: { maxAttempts: 7, cancellation: { maxDelayMs: 5000 } },
      });
    });
    afterAll(async () => {
      await prec?.close();
    });

    async function policyOf(spawned: Promise<SpawnResult>) {
      const row = await taskRow(pool, (await spawned).taskId);
      return { queue: row.queue, maxAttempts: row.max_attempts, retry: row.retry, cancellation: row.cancellation };
    }
    const BUILT_IN_RETRY = { kind: 'exponential', baseDelayMs: 1000, factor: 2, maxDelayMs: 300000 };

    it('uses the built-in defaults when nothing is set', async () => {
      expect(await policyOf(t.client.spawn(EchoTask, {}))).toEqual({
        queue: 'default', maxAttempts: 5, retry: BUILT_IN_RETRY, cancellation: null,
      });
    });

    it('module defaults override the built-in defaults, option by option', async () => {
      expect(await policyOf(prec.client.spawn(PrecPlainTask, {}))).toEqual({
        queue: PRECEDENCE_QUEUE, maxAttempts: 7, retry: BUILT_IN_RETRY, cancellation: { maxDelayMs: 5000 },
      });
    });

    it('@DurableTask options override the module defaults, option by option', async () => {
      expect(await policyOf(prec.client.spawn(PrecDecoratedTask, {}))).toEqual({
        queue: PRECEDENCE_QUEUE, maxAttempts: 3, retry: { kind: 'fixed', delayMs: 2222 }, cancellation: { maxDelayMs: 9000 },
      });
      expect(await policyOf(prec.client.spawn(PrecPartialTask, {}))).toEqual({
        queue: PRECEDENCE_QUEUE, maxAttempts: 7, retry: { kind: 'fixed', delayMs: 3333 }, cancellation: { maxDelayMs: 5000 },
      });
      // Spawned by name, the handler's options apply too.
      expect(await policyOf(prec.client.spawn('prec-decorated', {}))).toEqual({
        queue: PRECEDENCE_QUEUE, maxAttempts: 3, retry: { kind: 'fixed', delayMs: 2222 }, cancellation: { maxDelayMs: 9000 },
      });
    });

    it('spawn options override @DurableTask options, option by option', async () => {
      expect(await policyOf(prec.client.spawn(PrecDecoratedTask, {}, { maxAttempts: 9 }))).toEqual({
        queue: PRECEDENCE_QUEUE, maxAttempts: 9, retry: { kind: 'fixed', delayMs: 2222 }, cancellation: { maxDelayMs: 9000 },
      });
      expect(await policyOf(prec.client.spawn('prec-decorated', {}, { retry: { kind: 'none' }, cancellation: { maxDelayMs: 13000 } }))).toEqual({
        queue: PRECEDENCE_QUEUE, maxAttempts: 3, retry: { kind: 'none' }, cancellation: { maxDelayMs: 13000 },
      });
      expect(await policyOf(prec.client.spawn(PrecPartialTask, {}, { maxAttempts: 2, queue: 'elsewhere' }))).toEqual({
        queue: 'elsewhere', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 3333 }, cancellation: { maxDelayMs: 5000 },
      });
    });

    it('puts the effective cancellation policy into force (cancel_at = spawn + maxDelayMs)', async () => {
      const { taskId } = await prec.client.spawn(PrecDecoratedTask, {}, { cancellation: { maxDelayMs: 13000 } });
      const { rows } = await pool.query(
        `select (extract(epoch from cancel_at - created_at) * 1000)::float8 as ms from durable.tasks where id = $1`, [taskId],
      );
      expect(rows[0].ms).toBe(13000);
    });
  });
});

// =============================================================================================

const DelayedTask = countingTask('DelayedTask', { name: 'spawn-delayed' }, 'ran');

describe('spawn with delayMs / runAt (test clock)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [DelayedTask]);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  async function dbNow(): Promise<Date> {
    const { rows } = await pool.query('select durable.now() as now');
    return rows[0].now as Date;
  }

  async function availableAfterCreateMs(taskId: string): Promise<number> {
    const { rows } = await pool.query(
      `select (extract(epoch from r.available_at - t.created_at) * 1000)::float8 as ms
       from durable.runs r join durable.tasks t on t.id = r.task_id where r.task_id = $1 and r.attempt = 1`,
      [taskId],
    );
    return rows[0].ms as number;
  }

  async function expectNotStarted(taskId: string) {
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'pending', attempts: 1, first_started_at: null });
    const runs = await runsOf(pool, taskId);
    expect(runs.map((run) => [run.state, run.started_at, run.worker_id])).toEqual([['pending', null, null]]);
    expect(executed(taskId)).toBe(0);
  }

  it('does not start a task before delayMs has passed on the database clock', async () => {
    const { taskId } = await t.client.spawn(DelayedTask, {}, { delayMs: HOUR });
    expect(await availableAfterCreateMs(taskId)).toBe(HOUR);
    await sleep(1200); // six poll intervals
    await expectNotStarted(taskId);

    await advanceClock(pool, HOUR - 60_000);
    await sleep(600);
    await expectNotStarted(taskId);

    await advanceClock(pool, 61_000);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('ran');
    expect(executed(taskId)).toBe(1);
  });

  it('does not start a task before runAt', async () => {
    const runAt = new Date((await dbNow()).getTime() + 2 * HOUR);
    const { taskId } = await t.client.spawn(DelayedTask, {}, { runAt });
    const runs = await runsOf(pool, taskId);
    expect((runs[0].available_at as Date).getTime()).toBe(runAt.getTime());
    await sleep(1200);
    await expectNotStarted(taskId);

    await advanceClock(pool, 2 * HOUR + 1000);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('ran');
    expect(executed(taskId)).toBe(1);
  });

  it('starts at once with a runAt in the past', async () => {
    const { taskId } = await t.client.spawn(DelayedTask, {}, { runAt: new Date((await dbNow()).getTime() - HOUR) });
    expect(await availableAfterCreateMs(taskId)).toBe(0);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('ran');
  });

  it('refuses delayMs and runAt together, writing nothing', async () => {
    const before = await countRows(pool);
    const error = await rejectionOf(() => t.client.spawn(DelayedTask, {}, { delayMs: 1000, runAt: new Date() }));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toMatch(/delayMs/);
    expect(error.message).toMatch(/runAt/);
    expect(await countRows(pool)).toEqual(before);
  });
});

// =============================================================================================

describe('spawn refuses bad input before writing anything', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let small: DurableTestApp;
  let pool: pg.Pool;
  const EMPTY = { tasks: 0, runs: 0, checkpoints: 0, events: 0, waits: 0, queues: 0 };

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [EchoTask], { worker: false });
    small = await startApp(db.url, [EchoTask], { worker: false, maxPayloadBytes: 1000 });
  });
  afterAll(async () => {
    await small?.close();
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  const cycle: Record<string, unknown> = { a: 1 };
  cycle.self = cycle;
  const bad = <T>(value: unknown) => value as T;

  type Case = [string, (client: DurableTestApp['client']) => Promise<unknown>, RegExp];

  const invalidArguments: Case[] = [
    ['empty task name', (c) => c.spawn('', {}), /task name must be a non-empty string/],
    ['task name with NUL', (c) => c.spawn('send\u0000email', {}), /task name must not contain a NUL/],
    ['empty queue', (c) => c.spawn('spawn-echo', {}, { queue: '' }), /queue must be a non-empty string/],
    ['queue with NUL', (c) => c.spawn('spawn-echo', {}, { queue: 'q\u0000' }), /queue must not contain a NUL/],
    ['empty idempotencyKey', (c) => c.spawn('spawn-echo', {}, { idempotencyKey: '' }), /idempotencyKey/],
    ['idempotencyKey with NUL', (c) => c.spawn('spawn-echo', {}, { idempotencyKey: 'k\u0000' }), /idempotencyKey/],
    ['negative delayMs', (c) => c.spawn('spawn-echo', {}, { delayMs: -1 }), /delayMs/],
    ['NaN delayMs', (c) => c.spawn('spawn-echo', {}, { delayMs: NaN }), /delayMs/],
    ['Infinity delayMs', (c) => c.spawn('spawn-echo', {}, { delayMs: Infinity }), /delayMs/],
    ['string delayMs', (c) => c.spawn('spawn-echo', {}, { delayMs: bad<number>('1000') }), /delayMs/],
    ['invalid Date runAt', (c) => c.spawn('spawn-echo', {}, { runAt: new Date('not a date') }), /runAt/],
    ['string runAt', (c) => c.spawn('spawn-echo', {}, { runAt: bad<Date>('2030-01-01T00:00:00Z') }), /runAt/],
    ['maxAttempts 0', (c) => c.spawn('spawn-echo', {}, { maxAttempts: 0 }), /maxAttempts/],
    ['maxAttempts 1.5', (c) => c.spawn('spawn-echo', {}, { maxAttempts: 1.5 }), /maxAttempts/],
    ['maxAttempts -1', (c) => c.spawn('spawn-echo', {}, { maxAttempts: -1 }), /maxAttempts/],
    ['maxAttempts NaN', (c) => c.spawn(EchoTask, {}, { maxAttempts: NaN }), /maxAttempts/],
    ['unknown retry kind', (c) => c.spawn('spawn-echo', {}, { retry: bad({ kind: 'linear', delayMs: 5 }) }), /retry/],
    ['negative fixed retry delay', (c) => c.spawn('spawn-echo', {}, { retry: { kind: 'fixed', delayMs: -5 } }), /retry\.delayMs/],
    ['NaN fixed retry delay', (c) => c.spawn('spawn-echo', {}, { retry: { kind: 'fixed', delayMs: NaN } }), /retry\.delayMs/],
    ['missing fixed retry delay', (c) => c.spawn('spawn-echo', {}, { retry: bad({ kind: 'fixed' }) }), /retry\.delayMs/],
    ['negative exponential base', (c) => c.spawn('spawn-echo', {}, { retry: { kind: 'exponential', baseDelayMs: -1 } }), /retry\.baseDelayMs/],
    ['negative exponential cap', (c) => c.spawn('spawn-echo', {}, { retry: { kind: 'exponential', baseDelayMs: 10, maxDelayMs: -1 } }), /retry\.maxDelayMs/],
    ['exponential factor below 1', (c) => c.spawn('spawn-echo', {}, { retry: { kind: 'exponential', baseDelayMs: 10, factor: 0.5 } }), /retry\.factor/],
    ['cancellation maxDelayMs 0', (c) => c.spawn('spawn-echo', {}, { cancellation: { maxDelayMs: 0 } }), /cancellation\.maxDelayMs/],
    ['cancellation maxDurationMs negative', (c) => c.spawn('spawn-echo', {}, { cancellation: { maxDurationMs: -1 } }), /cancellation\.maxDurationMs/],
    ['cancellation maxDelayMs NaN', (c) => c.spawn(EchoTask, {}, { cancellation: { maxDelayMs: NaN } }), /cancellation\.maxDelayMs/],
    ['empty header key', (c) => c.spawn('spawn-echo', {}, { headers: { '': 'x' } }), /header key/],
    ['header key with NUL', (c) => c.spawn('spawn-echo', {}, { headers: { 'a\u0000b': 'x' } }), /header key/],
    ['headers not an object', (c) => c.spawn('spawn-echo', {}, { headers: bad(['a']) }), /headers/],
    ['undecorated class', (c) => c.spawn(UndecoratedTask, {}), /UndecoratedTask is not decorated with @DurableTask/],
  ];

  it.each(invalidArguments)('%s -> InvalidArgumentError', async (_what, call, message) => {
    expect(await countRows(pool)).toEqual(EMPTY);
    const error = await rejectionOf(() => call(t.client));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.name).toBe('InvalidArgumentError');
    expect(error.message).toMatch(message);
    expect(await countRows(pool)).toEqual(EMPTY);
  });

  const serializationErrors: Case[] = [
    ['BigInt params', (c) => c.spawn('spawn-echo', 10n), /BigInt/],
    ['nested BigInt', (c) => c.spawn('spawn-echo', { order: { total: 10n } }), /BigInt at "total"/],
    ['function in params', (c) => c.spawn('spawn-echo', { callback: () => 1 }), /function at "callback"/],
    ['symbol in params', (c) => c.spawn('spawn-echo', { tag: Symbol('x') }), /symbol/],
    ['cycle in params', (c) => c.spawn('spawn-echo', cycle), /not JSON/],
    ['NUL in a params string', (c) => c.spawn('spawn-echo', { text: 'a\u0000b' }), /NUL/],
    ['NUL in a params key', (c) => c.spawn('spawn-echo', { ['a\u0000b']: 1 }), /NUL/],
    ['lone surrogate in params', (c) => c.spawn('spawn-echo', { text: 'a\uD83Db' }), /lone surrogate/],
    ['BigInt in headers', (c) => c.spawn('spawn-echo', {}, { headers: { n: 1n } }), /headers.*BigInt/],
    ['NUL in a header value', (c) => c.spawn('spawn-echo', {}, { headers: { h: '\u0000' } }), /headers.*NUL/],
  ];

  it.each(serializationErrors)('%s -> SerializationError', async (_what, call, message) => {
    expect(await countRows(pool)).toEqual(EMPTY);
    const error = await rejectionOf(() => call(t.client));
    expect(error).toBeInstanceOf(SerializationError);
    expect(error.name).toBe('SerializationError');
    expect(error.message).toMatch(message);
    expect(await countRows(pool)).toEqual(EMPTY);
  });

  it('refuses params over maxPayloadBytes, counting bytes rather than characters', async () => {
    for (const params of [{ s: 'a'.repeat(2000) }, 'é'.repeat(600)]) {
      const error = await rejectionOf(() => small.client.spawn('spawn-echo', params));
      expect(error).toBeInstanceOf(SerializationError);
      expect(error.message).toMatch(/maxPayloadBytes/);
      expect(await countRows(pool)).toEqual(EMPTY);
    }
    // The same params are fine under the default limit...
    const accepted = await t.client.spawn('spawn-echo', 'é'.repeat(600));
    expect(accepted.created).toBe(true);
    // ...and params just under the limit pass this app too.
    const underLimit = await small.client.spawn('spawn-echo', 'a'.repeat(990));
    expect(underLimit.created).toBe(true);
    expect(await countRows(pool)).toMatchObject({ tasks: 2, runs: 2 });
  });
});

// =============================================================================================

const ExtremeTask = countingTask('ExtremeTask', { name: 'spawn-extreme' }, 'ran');

/**
 * "Durations are milliseconds and any positive value works", and bad input is refused with a
 * DurableError before anything is written: huge but finite values must not surface as raw
 * database errors, nor break the queue for other tasks.
 */
describe('spawn with extreme but valid values', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [ExtremeTask]);
  });
  afterEach(async () => {
    // One test's leftovers must not decide the next one's outcome.
    await pool.query('delete from durable.tasks');
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  /** A plain task spawned now must still run: nothing on the queue may block the worker. */
  async function expectQueueStillWorks() {
    const control = await t.client.spawn(ExtremeTask, {});
    await expect(t.client.awaitResult(control.taskId, { timeoutMs: 8000 })).resolves.toBe('ran');
  }

  it('accepts a huge delayMs: the task is stored and does not start', async () => {
    const spawned = await t.client.spawn(ExtremeTask, {}, { delayMs: 1e17 });
    expect(spawned.created).toBe(true);
    await expectQueueStillWorks();
    expect(await taskRow(pool, spawned.taskId)).toMatchObject({ state: 'pending', first_started_at: null });
    expect(executed(spawned.taskId)).toBe(0);
  });

  it('accepts a valid Date runAt far in the past: the task starts at once', async () => {
    const spawned = await t.client.spawn(ExtremeTask, {}, { runAt: new Date(-8.64e15) });
    await expect(t.client.awaitResult(spawned.taskId, { timeoutMs: 8000 })).resolves.toBe('ran');
  });

  it('accepts a huge cancellation.maxDelayMs: the task runs', async () => {
    const spawned = await t.client.spawn(ExtremeTask, {}, { cancellation: { maxDelayMs: 1e300 } });
    await expect(t.client.awaitResult(spawned.taskId, { timeoutMs: 8000 })).resolves.toBe('ran');
  });

  it('accepts a huge cancellation.maxDurationMs without blocking the queue', async () => {
    const spawned = await t.client.spawn(ExtremeTask, {}, { cancellation: { maxDurationMs: 1e300 } });
    expect(spawned.created).toBe(true);
    await expectQueueStillWorks();
    await expect(t.client.awaitResult(spawned.taskId, { timeoutMs: 8000 })).resolves.toBe('ran');
  });

  it('refuses a maxAttempts the database cannot store with InvalidArgumentError, writing nothing', async () => {
    const before = await countRows(pool);
    for (const maxAttempts of [2 ** 31, Number.MAX_SAFE_INTEGER]) {
      const error = await rejectionOf(() => t.client.spawn(ExtremeTask, {}, { maxAttempts }));
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(error.message).toMatch(/maxAttempts/);
    }
    expect(await countRows(pool)).toEqual(before);
  });
});
