/**
 * ctx.awaitEvent / ctx.emitEvent / client.emitEvent against a real Postgres: suspension and
 * wake-up, events emitted before the wait, first emit wins, timeouts (checkpointed, final when
 * uncaught), queue isolation, emits from tasks that replay, cancellation racing an emit, bad
 * names, and LISTEN/NOTIFY making wake-ups immediate.
 *
 * Every handler appends to `trace` on each invocation, so "returned at once" (one invocation)
 * and "did not wait again" are exact; the state log (a trigger) records every state a task had.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import {
  DurableTask, EventTimeoutError, InvalidArgumentError, TaskFailedError,
  type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { advanceClock, eventually, sleep as pause, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { installStateLog, runStates, taskStates } from '../fixtures/events-state-log.js';

const HOUR = 3_600_000;

/** Task id -> what its handler did, as `<what>@<attempt>`, in order. */
const trace = new Map<string, string[]>();
function mark(ctx: TaskContext, what: string): void {
  const list = trace.get(ctx.taskId) ?? [];
  list.push(`${what}@${ctx.attempt}`);
  trace.set(ctx.taskId, list);
}
const traceOf = (taskId: string) => trace.get(taskId) ?? [];
const eventName = (label: string) => `${label}-${randomUUID()}`;

// ---------------------------------------------------------------------------------------------
// Handlers

interface AwaitParams {
  event: string;
  timeoutMs?: number;
  failOnFirstAttempt?: boolean;
}

async function awaitAndReturn(params: AwaitParams, ctx: TaskContext): Promise<unknown> {
  mark(ctx, 'enter');
  const payload = await ctx.awaitEvent(params.event, params.timeoutMs === undefined ? {} : { timeoutMs: params.timeoutMs });
  mark(ctx, `got:${JSON.stringify(payload)}`);
  if (params.failOnFirstAttempt && ctx.attempt === 1) throw new Error('fails after the event');
  return payload;
}

@DurableTask({ name: 'await-event' })
class AwaitTask implements DurableTaskHandler<AwaitParams, unknown> {
  run(params: AwaitParams, ctx: TaskContext) {
    return awaitAndReturn(params, ctx);
  }
}

@DurableTask({ name: 'await-event', queue: 'q1' })
class AwaitOnQ1Task implements DurableTaskHandler<AwaitParams, unknown> {
  run(params: AwaitParams, ctx: TaskContext) {
    return awaitAndReturn(params, ctx);
  }
}

@DurableTask({ name: 'await-event', queue: 'q2' })
class AwaitOnQ2Task implements DurableTaskHandler<AwaitParams, unknown> {
  run(params: AwaitParams, ctx: TaskContext) {
    return awaitAndReturn(params, ctx);
  }
}

@DurableTask({ name: 'await-two' })
class AwaitTwoTask implements DurableTaskHandler<{ first: string; second: string }, unknown[]> {
  async run(params: { first: string; second: string }, ctx: TaskContext) {
    mark(ctx, 'enter');
    const a = await ctx.awaitEvent(params.first);
    const b = await ctx.awaitEvent(params.second);
    return [a, b];
  }
}

/** Catches the timeout and goes on; optionally fails once afterwards to force a replay. */
@DurableTask({ name: 'catch-timeout' })
class CatchTimeoutTask implements DurableTaskHandler<AwaitParams, Record<string, unknown>> {
  async run(params: AwaitParams, ctx: TaskContext) {
    mark(ctx, 'enter');
    let outcome: Record<string, unknown>;
    try {
      outcome = { payload: await ctx.awaitEvent(params.event, { timeoutMs: params.timeoutMs }) };
    } catch (error) {
      if (!(error instanceof EventTimeoutError)) throw error;
      outcome = { timedOut: true, name: error.name };
    }
    mark(ctx, JSON.stringify(outcome));
    await ctx.step('after', () => 'after');
    if (params.failOnFirstAttempt && ctx.attempt === 1) throw new Error('a later failure');
    return outcome;
  }
}

/** Emits, then fails on attempt 1; attempt 2 would emit a different payload if it emitted again. */
@DurableTask({ name: 'emit-then-fail' })
class EmitThenFailTask implements DurableTaskHandler<{ event: string }, string> {
  async run(params: { event: string }, ctx: TaskContext) {
    await ctx.emitEvent(params.event, { v: ctx.attempt === 1 ? 'A' : 'B' });
    mark(ctx, 'emitted');
    if (ctx.attempt === 1) throw new Error('fails after emitting');
    return 'done';
  }
}

/** Each bad call, caught: the error class it threw. */
@DurableTask({ name: 'bad-event-calls' })
class BadEventCallsTask implements DurableTaskHandler<{ event: string }, string[]> {
  async run(params: { event: string }, ctx: TaskContext) {
    mark(ctx, 'enter');
    const calls: Array<() => Promise<unknown>> = [
      () => ctx.awaitEvent(''),
      () => ctx.emitEvent('', { x: 1 }),
      () => ctx.awaitEvent(`${params.event}\u0000`),
      () => ctx.awaitEvent(params.event, { timeoutMs: -1 }),
      () => ctx.awaitEvent(params.event, { timeoutMs: Number.NaN }),
      () => ctx.awaitEvent(params.event, { stepName: '' }),
    ];
    const seen: string[] = [];
    for (const call of calls) {
      try {
        await call();
        seen.push('returned');
      } catch (error) {
        seen.push(error instanceof InvalidArgumentError ? (error as Error).name : `other:${(error as Error)?.name}`);
      }
    }
    return seen;
  }
}

/** The same event twice (checkpoints `event:<name>` and `event:<name>#2`), then under a step name. */
@DurableTask({ name: 'await-repeated' })
class AwaitRepeatedTask implements DurableTaskHandler<{ event: string }, unknown[]> {
  async run(params: { event: string }, ctx: TaskContext) {
    mark(ctx, 'enter');
    const first = await ctx.awaitEvent(params.event);
    const second = await ctx.awaitEvent(params.event);
    const named = await ctx.awaitEvent(params.event, { stepName: 'custom' });
    return [first, second, named];
  }
}

@DurableTask({ name: 'emit-on-q1', queue: 'q1' })
class EmitOnQ1Task implements DurableTaskHandler<{ event: string }, string> {
  async run(params: { event: string }, ctx: TaskContext) {
    await ctx.emitEvent(params.event, { from: ctx.queue });
    return 'emitted';
  }
}

@DurableTask({ name: 'events-quick' })
class QuickTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    return 'quick';
  }
}

// ---------------------------------------------------------------------------------------------
// Row helpers

async function stateIs(t: DurableTestApp, taskId: string, state: string): Promise<boolean> {
  return (await t.client.getTask(taskId))?.state === state;
}

async function checkpointsOf(pool: pg.Pool, taskId: string): Promise<Array<{ name: string; value: unknown; attempt: number }>> {
  const { rows } = await pool.query(
    'select name, value, attempt from durable.checkpoints where task_id = $1 order by name',
    [taskId],
  );
  return rows;
}

async function eventRow(pool: pg.Pool, name: string, queue = 'default') {
  const { rows } = await pool.query(
    'select payload, emitted_at from durable.events where queue = $1 and name = $2',
    [queue, name],
  );
  return rows[0] as { payload: unknown; emitted_at: Date | null } | undefined;
}

async function waitsOf(pool: pg.Pool, taskIds: string[]) {
  const { rows } = await pool.query(
    'select task_id, queue, event_name, step_name, timeout_at from durable.waits where task_id = any($1) order by task_id',
    [taskIds],
  );
  return rows as Array<{ task_id: string; queue: string; event_name: string; step_name: string; timeout_at: Date | null }>;
}

/** Waits until the task is `sleeping` and its handler has returned (so the worker is done with it). */
async function untilSuspended(t: DurableTestApp, taskId: string, invocations = 1): Promise<void> {
  await eventually(() => stateIs(t, taskId, 'sleeping'), 15_000, `task ${taskId} to suspend`);
  await eventually(() => traceOf(taskId).length >= invocations, 5_000, `task ${taskId} to have run`);
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

async function isWaitingOnLock(pool: pg.Pool, pid: number): Promise<boolean> {
  const { rows } = await pool.query('select wait_event_type from pg_stat_activity where pid = $1', [pid]);
  return rows[0]?.wait_event_type === 'Lock';
}

// ---------------------------------------------------------------------------------------------

describe('events', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(
      db.url,
      [AwaitTask, AwaitOnQ1Task, AwaitOnQ2Task, AwaitTwoTask, CatchTimeoutTask, BadEventCallsTask, AwaitRepeatedTask, EmitOnQ1Task],
      { worker: { queues: ['default', 'q1', 'q2'] } },
    );
    pool = sqlPool(db.url);
    await installStateLog(pool);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('suspends on awaitEvent and resumes with the payload of a later emit', async () => {
    const event = eventName('resume');
    const task = await t.client.spawn(AwaitTask, { event });
    await untilSuspended(t, task.taskId);

    const { rows: runs } = await pool.query(
      'select state, wake_event, lease_expires_at, available_at from durable.runs where task_id = $1',
      [task.taskId],
    );
    expect(runs).toEqual([{ state: 'sleeping', wake_event: event, lease_expires_at: null, available_at: Infinity }]);
    expect(await waitsOf(pool, [task.taskId])).toEqual([
      { task_id: task.taskId, queue: 'default', event_name: event, step_name: `event:${event}`, timeout_at: null },
    ]);
    expect(await eventRow(pool, event)).toEqual({ payload: null, emitted_at: null });

    // Keys out of alphabetical order: the handler must see them as emitted (json, not jsonb).
    await t.client.emitEvent(event, { order: 42, by: 'z', at: 1 });
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ order: 42, by: 'z', at: 1 });

    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1', 'got:{"order":42,"by":"z","at":1}@1']);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'pending@1', 'running@1', 'completed@1',
    ]);
    expect(await runStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'pending@1', 'running@1', 'completed@1',
    ]);
    expect(await checkpointsOf(pool, task.taskId)).toEqual([
      { name: `event:${event}`, value: { payload: { order: 42, by: 'z', at: 1 } }, attempt: 1 },
    ]);
    expect(await waitsOf(pool, [task.taskId])).toEqual([]);
  });

  it('returns an event emitted before the task was spawned at once, in one invocation', async () => {
    const event = eventName('early');
    await t.client.emitEvent(event, ['early', { z: 1, a: 2 }]);
    const task = await t.client.spawn(AwaitTask, { event });
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual(['early', { z: 1, a: 2 }]);
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'got:["early",{"z":1,"a":2}]@1']);
    expect(await taskStates(pool, task.taskId)).toEqual(['pending@1', 'running@1', 'completed@1']);
    expect(await waitsOf(pool, [task.taskId])).toEqual([]);
  });

  it('returns an event emitted while the task waited on another one without suspending for it', async () => {
    const first = eventName('first');
    const second = eventName('second');
    const task = await t.client.spawn(AwaitTwoTask, { first, second });
    await untilSuspended(t, task.taskId);
    await t.client.emitEvent(second, 'two');
    await pause(300);
    expect(await t.client.getTask(task.taskId)).toMatchObject({ state: 'sleeping' });
    await t.client.emitEvent(first, 'one');
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual(['one', 'two']);
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1']);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'pending@1', 'running@1', 'completed@1',
    ]);
  });

  it('first emit wins: every awaiter, earlier or later, gets the first payload and the row keeps it', async () => {
    const event = eventName('first-wins');
    const early = await t.client.spawn(AwaitTask, { event });
    await untilSuspended(t, early.taskId);

    await t.client.emitEvent(event, { p: 1 });
    const afterFirst = await eventRow(pool, event);
    expect(afterFirst).toEqual({ payload: { p: 1 }, emitted_at: expect.any(Date) });
    await t.client.emitEvent(event, { p: 2 });
    expect(await eventRow(pool, event)).toEqual(afterFirst);

    const late = await t.client.spawn(AwaitTask, { event });
    await expect(t.client.awaitResult(early.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ p: 1 });
    await expect(t.client.awaitResult(late.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ p: 1 });
    expect(traceOf(late.taskId)).toEqual(['enter@1', 'got:{"p":1}@1']);
    await t.client.emitEvent(event, { p: 3 });
    expect(await eventRow(pool, event)).toEqual(afterFirst);
  });

  it('wakes every task waiting on the event with the payload of one emit', async () => {
    const event = eventName('fan-out');
    const tasks = await Promise.all([1, 2, 3].map(() => t.client.spawn(AwaitTask, { event })));
    const ids = tasks.map((task) => task.taskId);
    for (const id of ids) await untilSuspended(t, id);
    expect((await waitsOf(pool, ids)).map((w) => w.event_name)).toEqual([event, event, event]);

    const { rows } = await pool.query('select durable.emit_event($1, $2, $3) as woken', ['default', event, '{"all":true}']);
    expect(rows).toEqual([{ woken: 3 }]);
    for (const id of ids) {
      await expect(t.client.awaitResult(id, { timeoutMs: 15_000 })).resolves.toEqual({ all: true });
      expect(traceOf(id)).toEqual(['enter@1', 'enter@1', 'got:{"all":true}@1']);
    }
    expect(await waitsOf(pool, ids)).toEqual([]);
  });

  it('an uncaught timeout (300 ms, real time) fails the task at once with EventTimeoutError', async () => {
    const event = eventName('never');
    const task = await t.client.spawn(AwaitTask, { event, timeoutMs: 300 });
    const failure = await t.client.awaitResult(task.taskId, { timeoutMs: 15_000 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TaskFailedError);
    expect((failure as TaskFailedError).error.name).toBe('EventTimeoutError');

    expect(await t.client.getTask(task.taskId)).toMatchObject({
      state: 'failed', attempts: 1, error: { name: 'EventTimeoutError' },
    });
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1']);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'running@1', 'failed@1',
    ]);
    expect(await checkpointsOf(pool, task.taskId)).toEqual([
      { name: `event:${event}`, value: { timedOut: true }, attempt: 1 },
    ]);
    expect(await waitsOf(pool, [task.taskId])).toEqual([]);
  });

  it('timeoutMs 0 times out at once without suspending, unless the event was already emitted', async () => {
    const missing = eventName('zero-timeout');
    const timedOut = await t.client.spawn(AwaitTask, { event: missing, timeoutMs: 0 });
    await expect(t.client.awaitResult(timedOut.taskId, { timeoutMs: 15_000 })).rejects.toBeInstanceOf(TaskFailedError);
    expect(await t.client.getTask(timedOut.taskId)).toMatchObject({ state: 'failed', attempts: 1, error: { name: 'EventTimeoutError' } });
    expect(traceOf(timedOut.taskId)).toEqual(['enter@1']);
    expect(await taskStates(pool, timedOut.taskId)).toEqual(['pending@1', 'running@1', 'failed@1']);

    const present = eventName('zero-timeout-emitted');
    await t.client.emitEvent(present, 'here');
    const received = await t.client.spawn(AwaitTask, { event: present, timeoutMs: 0 });
    await expect(t.client.awaitResult(received.taskId, { timeoutMs: 15_000 })).resolves.toBe('here');
    expect(traceOf(received.taskId)).toEqual(['enter@1', 'got:"here"@1']);
  });

  it('a caught timeout lets the handler go on, and a replay after a later failure sees the same timeout without waiting', async () => {
    const event = eventName('caught');
    const task = await t.client.spawn(CatchTimeoutTask, { event, timeoutMs: 300, failOnFirstAttempt: true }, {
      maxAttempts: 2, retry: { kind: 'fixed', delayMs: 1000 },
    });
    await eventually(async () => (await t.client.getTask(task.taskId))?.attempts === 2, 15_000, 'attempt 1 to fail');
    const [checkpoint] = await checkpointsOf(pool, task.taskId);
    expect(checkpoint).toEqual({ name: `event:${event}`, value: { timedOut: true }, attempt: 1 });
    // Emitted after the timeout and (almost surely) before attempt 2 runs: the checkpoint decides.
    await t.client.emitEvent(event, 'too late');

    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual({
      timedOut: true, name: 'EventTimeoutError',
    });
    const outcome = '{"timedOut":true,"name":"EventTimeoutError"}';
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1', `${outcome}@1`, 'enter@2', `${outcome}@2`]);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'running@1', 'pending@2', 'running@2', 'completed@2',
    ]);
    expect(await checkpointsOf(pool, task.taskId)).toEqual([
      checkpoint,
      { name: 'step:after', value: 'after', attempt: 1 },
    ]);
  });

  it('isolates queues: an event on q1 (or the default queue) does not wake a waiter on q2', async () => {
    const event = eventName('isolated');
    const onQ1 = await t.client.spawn(AwaitOnQ1Task, { event });
    const onQ2 = await t.client.spawn(AwaitOnQ2Task, { event });
    expect(await t.client.getTask(onQ2.taskId)).toMatchObject({ queue: 'q2' });
    await untilSuspended(t, onQ1.taskId);
    await untilSuspended(t, onQ2.taskId);

    await t.client.emitEvent(event, { on: 'default' });
    await t.client.emitEvent(event, { on: 'q1' }, { queue: 'q1' });
    await expect(t.client.awaitResult(onQ1.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ on: 'q1' });
    await pause(500);
    expect(await t.client.getTask(onQ2.taskId)).toMatchObject({ state: 'sleeping' });
    expect(await waitsOf(pool, [onQ2.taskId])).toEqual([
      { task_id: onQ2.taskId, queue: 'q2', event_name: event, step_name: `event:${event}`, timeout_at: null },
    ]);
    expect(await eventRow(pool, event, 'q2')).toEqual({ payload: null, emitted_at: null });
    expect(traceOf(onQ2.taskId)).toEqual(['enter@1']);

    await t.client.emitEvent(event, { on: 'q2' }, { queue: 'q2' });
    await expect(t.client.awaitResult(onQ2.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ on: 'q2' });
    expect(await eventRow(pool, event, 'default')).toMatchObject({ payload: { on: 'default' } });
    expect(await eventRow(pool, event, 'q1')).toMatchObject({ payload: { on: 'q1' } });
  });

  it('ctx.emitEvent emits on the task\'s own queue', async () => {
    const event = eventName('task-queue');
    const onQ1 = await t.client.spawn(AwaitOnQ1Task, { event });
    const onDefault = await t.client.spawn(AwaitTask, { event });
    await untilSuspended(t, onQ1.taskId);
    await untilSuspended(t, onDefault.taskId);

    const emitter = await t.client.spawn(EmitOnQ1Task, { event });
    await expect(t.client.awaitResult(emitter.taskId, { timeoutMs: 15_000 })).resolves.toBe('emitted');
    await expect(t.client.awaitResult(onQ1.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ from: 'q1' });
    await pause(500);
    expect(await t.client.getTask(onDefault.taskId)).toMatchObject({ state: 'sleeping' });
    expect(await eventRow(pool, event, 'default')).toEqual({ payload: null, emitted_at: null });
    await t.client.emitEvent(event, 'default');
    await expect(t.client.awaitResult(onDefault.taskId, { timeoutMs: 15_000 })).resolves.toBe('default');
  });

  it('numbers repeated waits on one event and honours stepName; all get the one payload', async () => {
    const event = eventName('repeated');
    const task = await t.client.spawn(AwaitRepeatedTask, { event });
    await untilSuspended(t, task.taskId);
    await t.client.emitEvent(event, 'p');
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual(['p', 'p', 'p']);
    // Woken once; the second and third waits found the event already emitted.
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1']);
    expect(await checkpointsOf(pool, task.taskId)).toEqual([
      { name: 'event:custom', value: { payload: 'p' }, attempt: 1 },
      { name: `event:${event}`, value: { payload: 'p' }, attempt: 1 },
      { name: `event:${event}#2`, value: { payload: 'p' }, attempt: 1 },
    ]);
  });

  it('an emit in the caller\'s transaction wakes the waiter only if it commits', async () => {
    const event = eventName('in-transaction');
    const task = await t.client.spawn(AwaitTask, { event });
    await untilSuspended(t, task.taskId);
    const dataSource = new DataSource({ type: 'postgres', url: db.url, poolSize: 2 });
    await dataSource.initialize();
    try {
      await expect(dataSource.transaction(async (manager) => {
        await t.client.emitEvent(event, 'rolled back', { manager });
        throw new Error('roll it back');
      })).rejects.toThrow('roll it back');
      await pause(500);
      expect(await t.client.getTask(task.taskId)).toMatchObject({ state: 'sleeping' });
      expect(await eventRow(pool, event)).toEqual({ payload: null, emitted_at: null });
      expect(await waitsOf(pool, [task.taskId])).toHaveLength(1);

      await dataSource.transaction(async (manager) => {
        await t.client.emitEvent(event, 'committed', { manager });
        await pause(400); // the worker polls meanwhile and must not see the uncommitted wake-up
        expect(await t.client.getTask(task.taskId)).toMatchObject({ state: 'sleeping' });
      });
      await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toBe('committed');
      expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1', 'got:"committed"@1']);
    } finally {
      await dataSource.destroy();
    }
  });

  describe('cancellation racing an emit (ordered by holding the task lock in a transaction)', () => {
    let a: pg.Client;
    let b: pg.Client;
    beforeAll(async () => {
      a = await connect(db.url);
      b = await connect(db.url);
    });
    afterAll(async () => {
      await a?.end();
      await b?.end();
    });

    it('cancel first: the emit waits for the lock, then wakes nothing; the task stays cancelled', async () => {
      const event = eventName('cancel-first');
      const task = await t.client.spawn(AwaitTask, { event });
      await untilSuspended(t, task.taskId);
      const { rows: [{ pid: bPid }] } = await b.query('select pg_backend_pid() as pid');

      await a.query('begin');
      expect((await a.query('select durable.cancel_task($1) as outcome', [task.taskId])).rows).toEqual([{ outcome: 'cancelled' }]);
      const emitting = b.query('select durable.emit_event($1, $2, $3) as woken', ['default', event, '{"x":1}']);
      await eventually(() => isWaitingOnLock(pool, bPid), 10_000, 'the emit to wait for the task lock');
      await a.query('commit');
      expect((await emitting).rows).toEqual([{ woken: 0 }]);

      await pause(600); // three polls of the worker
      expect(await t.client.getTask(task.taskId)).toMatchObject({ state: 'cancelled', error: { name: 'TaskCancelled' } });
      expect(await runStates(pool, task.taskId)).toEqual(['pending@1', 'running@1', 'sleeping@1', 'cancelled@1']);
      expect(traceOf(task.taskId)).toEqual(['enter@1']);
      expect(await checkpointsOf(pool, task.taskId)).toEqual([]);
      expect(await waitsOf(pool, [task.taskId])).toEqual([]);
      expect(await eventRow(pool, event)).toMatchObject({ payload: { x: 1 } });
    });

    it('emit first: the cancel waits for the lock, then cancels the woken run; a worker that claimed it first cannot complete it', async () => {
      const event = eventName('emit-first');
      const task = await t.client.spawn(AwaitTask, { event });
      await untilSuspended(t, task.taskId);
      const { rows: [{ pid: aPid }] } = await a.query('select pg_backend_pid() as pid');

      await b.query('begin');
      expect((await b.query('select durable.emit_event($1, $2, $3) as woken', ['default', event, '{"x":2}'])).rows)
        .toEqual([{ woken: 1 }]);
      const cancelling = a.query('select durable.cancel_task($1) as outcome', [task.taskId]);
      await eventually(() => isWaitingOnLock(pool, aPid), 10_000, 'the cancel to wait for the task lock');
      await pause(400); // the worker polls meanwhile; the woken run is locked, so it skips it
      await b.query('commit');
      expect((await cancelling).rows).toEqual([{ outcome: 'cancelled' }]);

      await pause(600);
      const cancelled = await t.client.getTask(task.taskId);
      expect(cancelled).toMatchObject({ state: 'cancelled' });
      expect(cancelled).not.toHaveProperty('result');
      // PostgreSQL does not order the waiting cancel before a worker's SKIP LOCKED claim of the
      // row version the emit just committed (the cancel must lock the new version afresh). So
      // either the cancel wins and no worker runs the woken run, or a worker claims it first:
      // the cancel then cancels the running run, and its completion is refused. Both were seen.
      const states = await runStates(pool, task.taskId);
      expect([
        ['pending@1', 'running@1', 'sleeping@1', 'pending@1', 'cancelled@1'],
        ['pending@1', 'running@1', 'sleeping@1', 'pending@1', 'running@1', 'cancelled@1'],
      ]).toContainEqual(states);
      const trace = traceOf(task.taskId);
      if (states.length === 5) expect(trace).toEqual(['enter@1']);
      else expect(trace.slice(0, 2)).toEqual(['enter@1', 'enter@1']);
      expect(await waitsOf(pool, [task.taskId])).toEqual([]);
    });
  });

  it('refuses an empty event name from client.emitEvent and from ctx calls, writing nothing', async () => {
    const { rows: [before] } = await pool.query('select count(*)::int as n from durable.events');
    await expect(t.client.emitEvent('', { x: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.client.emitEvent('nul\u0000name', { x: 1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.client.emitEvent('fine', { x: 1 }, { queue: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await pool.query('select count(*)::int as n from durable.events')).rows[0]).toEqual(before);

    const event = eventName('bad-calls');
    const task = await t.client.spawn(BadEventCallsTask, { event });
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual([
      'InvalidArgumentError', 'InvalidArgumentError', 'InvalidArgumentError',
      'InvalidArgumentError', 'InvalidArgumentError', 'InvalidArgumentError',
    ]);
    expect(traceOf(task.taskId)).toEqual(['enter@1']);
    expect((await pool.query('select count(*)::int as n from durable.events')).rows[0]).toEqual(before);
    expect(await checkpointsOf(pool, task.taskId)).toEqual([]);
    expect(await waitsOf(pool, [task.taskId])).toEqual([]);
    expect(await taskStates(pool, task.taskId)).toEqual(['pending@1', 'running@1', 'completed@1']);
  });
});

describe('events with the test clock', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [AwaitTask, EmitThenFailTask]);
    pool = sqlPool(db.url);
    await installStateLog(pool);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('an uncaught one-hour timeout fails the task once the database clock passes it', async () => {
    const event = eventName('hour');
    const task = await t.client.spawn(AwaitTask, { event, timeoutMs: HOUR });
    await untilSuspended(t, task.taskId);
    const { rows } = await pool.query(
      `select r.state, w.timeout_at = r.available_at as deadline_matches,
              extract(epoch from (r.available_at - durable.now())) * 1000 as remaining_ms
       from durable.runs r join durable.waits w on w.run_id = r.id where r.task_id = $1`,
      [task.taskId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'sleeping', deadline_matches: true });
    expect(Number(rows[0].remaining_ms)).toBeGreaterThan(HOUR - 1000);
    expect(Number(rows[0].remaining_ms)).toBeLessThanOrEqual(HOUR);

    await advanceClock(pool, HOUR + 1000);
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).rejects.toBeInstanceOf(TaskFailedError);
    expect(await t.client.getTask(task.taskId)).toMatchObject({ state: 'failed', attempts: 1, error: { name: 'EventTimeoutError' } });
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1']);
    expect(await checkpointsOf(pool, task.taskId)).toEqual([{ name: `event:${event}`, value: { timedOut: true }, attempt: 1 }]);
  });

  it('an emit before the deadline wakes a waiter that has a timeout', async () => {
    const event = eventName('in-time');
    const task = await t.client.spawn(AwaitTask, { event, timeoutMs: HOUR });
    await untilSuspended(t, task.taskId);
    await advanceClock(pool, HOUR - 60_000);
    const { rows } = await pool.query('select durable.emit_event($1, $2, $3) as woken', ['default', event, '"in time"']);
    expect(rows).toEqual([{ woken: 1 }]);
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toBe('in time');
    expect(await waitsOf(pool, [task.taskId])).toEqual([]);
    expect(await checkpointsOf(pool, task.taskId)).toEqual([{ name: `event:${event}`, value: { payload: 'in time' }, attempt: 1 }]);
  });

  it('a retry after receiving an event gets the same payload from its checkpoint, not from the events row', async () => {
    const event = eventName('retry-payload');
    const task = await t.client.spawn(AwaitTask, { event, failOnFirstAttempt: true }, {
      maxAttempts: 2, retry: { kind: 'fixed', delayMs: 60_000 },
    });
    await untilSuspended(t, task.taskId);
    await t.client.emitEvent(event, { n: 1 });
    await eventually(async () => {
      const snapshot = await t.client.getTask(task.taskId);
      return snapshot?.attempts === 2 && snapshot.state === 'pending';
    }, 15_000, 'attempt 1 to fail');

    // If attempt 2 read the event again instead of its checkpoint, it would see this.
    await pool.query(`update durable.events set payload = '{"n":999}' where queue = 'default' and name = $1`, [event]);
    await advanceClock(pool, 61_000);
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 1 });
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1', 'got:{"n":1}@1', 'enter@2', 'got:{"n":1}@2']);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'pending@1', 'running@1', 'pending@2', 'running@2', 'completed@2',
    ]);
  });

  it('ctx.emitEvent wakes a waiter in another task, and a replay of the emitter does not emit again', async () => {
    const event = eventName('from-task');
    const waiter = await t.client.spawn(AwaitTask, { event });
    await untilSuspended(t, waiter.taskId);

    const emitter = await t.client.spawn(EmitThenFailTask, { event }, { maxAttempts: 2, retry: { kind: 'fixed', delayMs: 60_000 } });
    await expect(t.client.awaitResult(waiter.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ v: 'A' });
    await eventually(async () => (await t.client.getTask(emitter.taskId))?.attempts === 2, 15_000, 'attempt 1 of the emitter to fail');
    expect(await eventRow(pool, event)).toMatchObject({ payload: { v: 'A' } });

    // With the event gone, an emit by the replay would create it again (with payload B).
    await pool.query(`delete from durable.events where queue = 'default' and name = $1`, [event]);
    await advanceClock(pool, 61_000);
    await expect(t.client.awaitResult(emitter.taskId, { timeoutMs: 15_000 })).resolves.toBe('done');
    expect(traceOf(emitter.taskId)).toEqual(['emitted@1', 'emitted@2']);
    expect(await eventRow(pool, event)).toBeUndefined();
    expect(await checkpointsOf(pool, emitter.taskId)).toEqual([{ name: `emit:${event}`, value: { emitted: true }, attempt: 1 }]);
  });
});

describe('LISTEN/NOTIFY wake-ups (worker polls only every 30 s)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [AwaitTask, CatchTimeoutTask, QuickTask], { worker: { pollIntervalMs: 30_000 } });
    pool = sqlPool(db.url);
    await installStateLog(pool);
    await pause(1500); // the worker has polled, found nothing, and is idle for 30 s
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('a spawn wakes the idle worker', async () => {
    const task = await t.client.spawn(QuickTask, {});
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 10_000 })).resolves.toBe('quick');
  });

  it('an emit wakes the idle worker to resume the waiting task', async () => {
    const event = eventName('notify');
    const task = await t.client.spawn(AwaitTask, { event });
    await untilSuspended(t, task.taskId);
    await pause(500); // the worker is idle again, for 30 s
    await t.client.emitEvent(event, 'woken');
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 10_000 })).resolves.toBe('woken');
  });

  it('an event emitted after the deadline but before the task resumed is reported as a timeout', async () => {
    const event = eventName('late');
    const task = await t.client.spawn(CatchTimeoutTask, { event, timeoutMs: HOUR });
    await untilSuspended(t, task.taskId);
    await pause(300);

    // The worker sleeps for 30 s and nothing notifies it: the emit lands before the resume.
    await advanceClock(pool, 2 * HOUR);
    const { rows } = await pool.query('select durable.emit_event($1, $2, $3) as woken', ['default', event, '"late"']);
    expect(rows).toEqual([{ woken: 0 }]);
    expect(await eventRow(pool, event)).toMatchObject({ payload: 'late', emitted_at: expect.any(Date) });
    expect(await runStates(pool, task.taskId)).toEqual(['pending@1', 'running@1', 'sleeping@1']);
    expect(await waitsOf(pool, [task.taskId])).toHaveLength(1);

    // Any spawn notifies the worker, which then claims the timed-out run too.
    await t.client.spawn(QuickTask, {});
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 10_000 })).resolves.toEqual({
      timedOut: true, name: 'EventTimeoutError',
    });
    expect(await checkpointsOf(pool, task.taskId)).toEqual([
      { name: `event:${event}`, value: { timedOut: true }, attempt: 1 },
      { name: 'step:after', value: 'after', attempt: 1 },
    ]);
    expect(await waitsOf(pool, [task.taskId])).toEqual([]);
  });
});
