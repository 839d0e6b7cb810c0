/**
 * Cancellation: `client.cancel` on every state, the strictness of suspension and cancellation
 * (a handler that swallows durable's control flow cannot go on), cancellation policies
 * (`maxDelayMs`, `maxDurationMs`), and a task whose name a worker does not know.
 */
import type pg from 'pg';
import {
  DurableTask, InvalidArgumentError, NonRetryableError, TaskCancelledError, TaskNotFoundError,
  type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { RemoteControl } from '../fixtures/leases-remote-control.js';
import { advanceClock, eventually, sleep as pause, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';


/** Per task: the attempt of each execution, and every step function that ran. */
const executions = new Map<string, number[]>();
const stepsRun = new Map<string, string[]>();
function recordExecution(ctx: TaskContext): void {
  executions.set(ctx.taskId, [...(executions.get(ctx.taskId) ?? []), ctx.attempt]);
}
function recordStep(ctx: TaskContext, name: string): string {
  stepsRun.set(ctx.taskId, [...(stepsRun.get(ctx.taskId) ?? []), name]);
  return `${name}-value`;
}

const remote = new RemoteControl();

@DurableTask({ name: 'remote' })
class RemoteTask implements DurableTaskHandler<unknown, unknown> {
  run(_params: unknown, ctx: TaskContext): Promise<unknown> {
    return remote.serve(ctx);
  }
}

@DurableTask({ name: 'counted' })
class CountedTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    recordExecution(ctx);
    return ctx.step('only', () => recordStep(ctx, 'only'));
  }
}

@DurableTask({ name: 'napper' })
class NapperTask implements DurableTaskHandler<{ napMs: number }, string> {
  async run(params: { napMs: number }, ctx: TaskContext) {
    recordExecution(ctx);
    await ctx.step('a', () => recordStep(ctx, 'a'));
    await ctx.sleepFor('nap', params.napMs);
    return ctx.step('b', () => recordStep(ctx, 'b'));
  }
}

@DurableTask({ name: 'waiter' })
class WaiterTask implements DurableTaskHandler<{ event: string }, string> {
  async run(params: { event: string }, ctx: TaskContext) {
    recordExecution(ctx);
    await ctx.awaitEvent(params.event, { timeoutMs: 60_000 });
    return ctx.step('b', () => recordStep(ctx, 'b'));
  }
}

/** Swallows the suspension of a sleep or an event wait and tries to go on. */
@DurableTask({ name: 'swallow-suspension' })
class SwallowSuspensionTask implements DurableTaskHandler<{ wait: 'sleep' | 'event'; event?: string }, unknown> {
  async run(params: { wait: 'sleep' | 'event'; event?: string }, ctx: TaskContext) {
    recordExecution(ctx);
    let payload: unknown = 'no payload';
    try {
      if (params.wait === 'sleep') await ctx.sleepFor('nap', 5_000);
      else payload = await ctx.awaitEvent(params.event!);
    } catch {
      // swallowed on purpose
    }
    let after = 'after did not run';
    try {
      after = await ctx.step('after', () => recordStep(ctx, 'after'));
    } catch {
      // swallowed on purpose
    }
    return { payload, after, attempt: ctx.attempt };
  }
}

const gates = new Map<string, () => void>();
function gate(taskId: string): Promise<void> {
  return new Promise((resolve) => gates.set(taskId, resolve));
}

/** Swallows everything after a cancellation and returns a value anyway. */
@DurableTask({ name: 'swallow-cancel' })
class SwallowCancelTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    recordExecution(ctx);
    await ctx.step('first', () => recordStep(ctx, 'first'));
    await gate(ctx.taskId);
    for (const name of ['x', 'y', 'z']) {
      try {
        await ctx.step(name, () => recordStep(ctx, name));
      } catch {
        // swallowed on purpose
      }
    }
    try {
      await ctx.heartbeat();
    } catch {
      // swallowed on purpose
    }
    try {
      await ctx.emitEvent('swallow-cancel-emitted', { from: ctx.taskId });
    } catch {
      // swallowed on purpose
    }
    return 'ignored';
  }
}

@DurableTask({ name: 'fails' })
class FailsTask implements DurableTaskHandler<unknown, never> {
  async run(_params: unknown, ctx: TaskContext): Promise<never> {
    recordExecution(ctx);
    throw new Error('boom');
  }
}

@DurableTask({ name: 'orphan' })
class OrphanTask implements DurableTaskHandler<{ n: number }, { n: number; attempt: number }> {
  async run(params: { n: number }, ctx: TaskContext) {
    recordExecution(ctx);
    return { n: params.n, attempt: ctx.attempt };
  }
}

async function taskRow(pool: pg.Pool, taskId: string) {
  const { rows } = await pool.query(
    `select state, attempts, result, error, updated_at, finished_at from durable.tasks where id = $1`,
    [taskId],
  );
  return rows[0] as { state: string; attempts: number; result: unknown; error: Record<string, unknown> | null; updated_at: Date; finished_at: Date | null };
}

async function runStates(pool: pg.Pool, taskId: string): Promise<[number, string][]> {
  const { rows } = await pool.query(`select attempt, state from durable.runs where task_id = $1 order by attempt`, [taskId]);
  return rows.map((row) => [row.attempt, row.state]);
}

async function checkpointNames(pool: pg.Pool, taskId: string): Promise<string[]> {
  const { rows } = await pool.query(`select name from durable.checkpoints where task_id = $1 order by name`, [taskId]);
  return rows.map((row) => row.name as string);
}

describe('client.cancel', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [RemoteTask, CountedTask, NapperTask, WaiterTask, SwallowSuspensionTask, SwallowCancelTask]);
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('cancels a pending task: it never executes', async () => {
    const { taskId } = await t.client.spawn(CountedTask, {}, { delayMs: 60_000 });
    expect((await taskRow(pool, taskId)).state).toBe('pending');
    await t.client.cancel(taskId);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'cancelled', attempts: 1, result: null, error: { name: 'TaskCancelled' } });
    expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 5_000 })).rejects.toBeInstanceOf(TaskCancelledError);

    await advanceClock(pool, 61_000);
    await pause(800);
    expect(executions.get(taskId)).toBeUndefined();
    expect((await taskRow(pool, taskId)).state).toBe('cancelled');
    expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);
  });

  it('cancels a running task: it is neither completed nor retried, and at most one more context call starts', async () => {
    const { taskId } = await t.client.spawn('remote', {}, { retry: { kind: 'fixed', delayMs: 0 } });
    const exec = await remote.execution(taskId);
    await expect(exec.call((ctx) => ctx.step('one', () => 'one'))).resolves.toBe('one');

    await t.client.cancel(taskId);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'cancelled', error: { name: 'TaskCancelled' } });

    // The handler swallows every error and keeps calling the context.
    const ran: string[] = [];
    const outcomes = [];
    outcomes.push(await settle(exec.call((ctx) => ctx.step('two', () => (ran.push('two'), 'two')))));
    outcomes.push(await settle(exec.call((ctx) => ctx.step('three', () => (ran.push('three'), 'three')))));
    outcomes.push(await settle(exec.call((ctx) => ctx.heartbeat())));
    outcomes.push(await settle(exec.call((ctx) => ctx.emitEvent('emitted-after-cancel', 1))));
    outcomes.push(await settle(exec.call((ctx) => ctx.sleepFor('nap', 1_000))));
    outcomes.push(await settle(exec.call((ctx) => ctx.awaitEvent('anything', { timeoutMs: 1_000 }))));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(Array(6).fill('rejected'));
    expect(ran.length).toBeLessThanOrEqual(1);
    expect(ran.filter((name) => name !== 'two')).toEqual([]);

    exec.finish('returned after cancel');
    await exec.done;
    await pause(600);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'cancelled', attempts: 1, result: null, error: { name: 'TaskCancelled' } });
    expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);
    expect(await checkpointNames(pool, taskId)).toEqual(['step:one']);
    const { rows: events } = await pool.query(`select name from durable.events where name = 'emitted-after-cancel'`);
    expect(events).toEqual([]);
    expect(remote.count(taskId)).toBe(1);
  });

  it('cancels a running task: at most one more context call starts, and once the cancel is noticed no step function runs', async () => {
    // Right after cancel() resolves: the contract allows one more context call to start
    // (the worker may not have heard of the cancel yet); the call after it must not run.
    const first = await t.client.spawn('remote', {});
    const execA = await remote.execution(first.taskId);
    await execA.call((ctx) => ctx.step('one', () => 'one'));
    await t.client.cancel(first.taskId);
    const ran: string[] = [];
    await execA.call((ctx) => ctx.step('two', () => ran.push('two'))).catch(() => undefined);
    await expect(execA.call((ctx) => ctx.step('three', () => ran.push('three')))).rejects.toBeInstanceOf(Error);
    expect(ran.length).toBeLessThanOrEqual(1);
    expect(ran).not.toContain('three');
    execA.finish('ignored');
    await execA.done;
    expect(await taskRow(pool, first.taskId)).toMatchObject({ state: 'cancelled', result: null });

    // Once the worker has heard of the cancel (NOTIFY), the very next step does not run its function.
    const second = await t.client.spawn('remote', {});
    const execB = await remote.execution(second.taskId);
    await execB.call((ctx) => ctx.step('one', () => 'one'));
    await t.client.cancel(second.taskId);
    await pause(500);
    let nextStepRan = false;
    await expect(execB.call((ctx) => ctx.step('two', () => (nextStepRan = true)))).rejects.toBeInstanceOf(Error);
    execB.finish('ignored');
    await execB.done;
    expect(await taskRow(pool, second.taskId)).toMatchObject({ state: 'cancelled', result: null });
    expect(nextStepRan).toBe(false);
    expect(await runStates(pool, second.taskId)).toEqual([[1, 'cancelled']]);
  });

  it('cancels a sleeping task: its waits are deleted and it never wakes', async () => {
    const napper = await t.client.spawn(NapperTask, { napMs: 60_000 });
    const waiter = await t.client.spawn(WaiterTask, { event: 'never-before-cancel' });
    await eventually(
      async () => (await taskRow(pool, napper.taskId)).state === 'sleeping' && (await taskRow(pool, waiter.taskId)).state === 'sleeping',
      10_000,
      'both tasks to sleep',
    );
    const waitsOf = async (taskId: string) =>
      (await pool.query(`select event_name from durable.waits where task_id = $1`, [taskId])).rows;
    expect(await waitsOf(waiter.taskId)).toEqual([{ event_name: 'never-before-cancel' }]);

    await t.client.cancel(napper.taskId);
    await t.client.cancel(waiter.taskId);
    for (const { taskId } of [napper, waiter]) {
      expect((await taskRow(pool, taskId)).state).toBe('cancelled');
      expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);
      expect(await waitsOf(taskId)).toEqual([]);
    }

    await advanceClock(pool, 120_000);
    await t.client.emitEvent('never-before-cancel', { late: true });
    await pause(1_000);
    for (const { taskId } of [napper, waiter]) {
      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'cancelled', result: null });
      expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);
      expect(executions.get(taskId)).toEqual([1]);
    }
    expect(stepsRun.get(napper.taskId)).toEqual(['a']);
    expect(stepsRun.get(waiter.taskId)).toBeUndefined();
    expect(await checkpointNames(pool, waiter.taskId)).toEqual([]);
  });

  it('is a no-op on a terminal task; unknown id -> TaskNotFoundError; malformed id -> InvalidArgumentError', async () => {
    const completed = await t.client.spawn('remote', {});
    (await remote.execution(completed.taskId)).finish('the result');
    await t.client.awaitResult(completed.taskId, { timeoutMs: 10_000 });

    const failed = await t.client.spawn('remote', {});
    (await remote.execution(failed.taskId)).fail(new NonRetryableError('final'));
    await expect(t.client.awaitResult(failed.taskId, { timeoutMs: 10_000 })).rejects.toMatchObject({ name: 'TaskFailedError' });

    const cancelled = await t.client.spawn('remote', {}, { delayMs: 60_000 });
    await t.client.cancel(cancelled.taskId);

    for (const { taskId } of [completed, failed, cancelled]) {
      const before = await taskRow(pool, taskId);
      const runsBefore = await runStates(pool, taskId);
      await expect(t.client.cancel(taskId)).resolves.toBeUndefined();
      expect(await taskRow(pool, taskId)).toEqual(before);
      expect(await runStates(pool, taskId)).toEqual(runsBefore);
    }
    expect(await taskRow(pool, completed.taskId)).toMatchObject({ state: 'completed', result: 'the result', error: null });
    expect(await taskRow(pool, failed.taskId)).toMatchObject({ state: 'failed', error: { name: 'NonRetryableError', message: 'final' } });

    await expect(t.client.cancel('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(TaskNotFoundError);
    await expect(t.client.cancel('not-a-uuid')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.client.cancel('')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a swallowed sleep suspension: the next step does not run, the return value is ignored, the wake completes it', async () => {
    const { taskId } = await t.client.spawn(SwallowSuspensionTask, { wait: 'sleep' });
    await eventually(async () => (await taskRow(pool, taskId)).state === 'sleeping', 10_000, 'the task to sleep');
    await pause(600);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'sleeping', result: null, error: null });
    expect(await runStates(pool, taskId)).toEqual([[1, 'sleeping']]);
    expect(stepsRun.get(taskId)).toBeUndefined();
    expect(await checkpointNames(pool, taskId)).toEqual(['sleep:nap']);

    await advanceClock(pool, 5_000);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toEqual({
      payload: 'no payload', after: 'after-value', attempt: 1,
    });
    expect(stepsRun.get(taskId)).toEqual(['after']);
    expect(executions.get(taskId)).toEqual([1, 1]);
    expect(await runStates(pool, taskId)).toEqual([[1, 'completed']]);
  });

  it('a swallowed event-wait suspension: the same, and the resumed execution gets the payload', async () => {
    const { taskId } = await t.client.spawn(SwallowSuspensionTask, { wait: 'event', event: 'swallow-go' });
    await eventually(async () => (await taskRow(pool, taskId)).state === 'sleeping', 10_000, 'the task to wait');
    await pause(600);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'sleeping', result: null, error: null });
    expect(stepsRun.get(taskId)).toBeUndefined();
    expect(await checkpointNames(pool, taskId)).toEqual([]);

    await t.client.emitEvent('swallow-go', { n: 42 });
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toEqual({
      payload: { n: 42 }, after: 'after-value', attempt: 1,
    });
    expect(stepsRun.get(taskId)).toEqual(['after']);
    expect(executions.get(taskId)).toEqual([1, 1]);
    expect(await runStates(pool, taskId)).toEqual([[1, 'completed']]);
  });

  it('a handler that swallows its cancellation and returns a value stays cancelled with no result', async () => {
    const { taskId } = await t.client.spawn(SwallowCancelTask, {}, { retry: { kind: 'fixed', delayMs: 0 } });
    await eventually(() => gates.get(taskId), 10_000, 'the handler to reach its gate');
    await t.client.cancel(taskId);
    gates.get(taskId)!();
    await pause(800);

    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'cancelled', attempts: 1, result: null, error: { name: 'TaskCancelled' } });
    expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);
    expect(executions.get(taskId)).toEqual([1]);
    expect(await checkpointNames(pool, taskId)).toEqual(['step:first']);
    // At most the first call after the cancellation may have started; y and z never ran.
    expect(stepsRun.get(taskId)!.filter((name) => name !== 'first' && name !== 'x')).toEqual([]);
    const { rows: events } = await pool.query(`select name from durable.events where name = 'swallow-cancel-emitted'`);
    expect(events).toEqual([]);
  });
});

describe('cancellation policies', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [CountedTask, NapperTask, FailsTask]);
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('maxDelayMs: a task not started within it is cancelled by the next poll, and never runs', async () => {
    const { taskId } = await t.client.spawn(CountedTask, {}, { delayMs: 120_000, cancellation: { maxDelayMs: 60_000 } });
    await pause(600);
    expect((await taskRow(pool, taskId)).state).toBe('pending');

    await advanceClock(pool, 61_000);
    await eventually(async () => (await taskRow(pool, taskId)).state === 'cancelled', 10_000, 'the policy to cancel the task');
    const task = await taskRow(pool, taskId);
    expect(task.error!.message).toMatch(/maxDelayMs/);
    expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);

    await advanceClock(pool, 120_000);
    await pause(800);
    expect((await taskRow(pool, taskId)).state).toBe('cancelled');
    expect(executions.get(taskId)).toBeUndefined();
  });

  it('maxDurationMs cancels a sleeping task once exceeded', async () => {
    const { taskId } = await t.client.spawn(NapperTask, { napMs: 600_000 }, { cancellation: { maxDurationMs: 30_000 } });
    await eventually(async () => (await taskRow(pool, taskId)).state === 'sleeping', 10_000, 'the task to sleep');
    await pause(600);
    expect((await taskRow(pool, taskId)).state).toBe('sleeping');

    await advanceClock(pool, 31_000);
    await eventually(async () => (await taskRow(pool, taskId)).state === 'cancelled', 10_000, 'the policy to cancel the task');
    expect((await taskRow(pool, taskId)).error!.message).toMatch(/maxDurationMs/);
    expect(await runStates(pool, taskId)).toEqual([[1, 'cancelled']]);

    await advanceClock(pool, 600_000);
    await pause(800);
    expect((await taskRow(pool, taskId)).state).toBe('cancelled');
    expect(executions.get(taskId)).toEqual([1]);
    expect(stepsRun.get(taskId)).toEqual(['a']);
  });

  it('maxDurationMs with a fixed 30 s retry cancels instead of retrying when the next attempt would start too late', async () => {
    const { taskId } = await t.client.spawn(FailsTask, {}, {
      retry: { kind: 'fixed', delayMs: 30_000 }, maxAttempts: 5, cancellation: { maxDurationMs: 20_000 },
    });
    await eventually(async () => (await taskRow(pool, taskId)).state === 'cancelled', 10_000, 'the task to be cancelled');
    const task = await taskRow(pool, taskId);
    expect(task.error!.message).toMatch(/maxDurationMs/);
    expect(task.error!.lastError).toMatchObject({ name: 'Error', message: 'boom' });
    expect(task.attempts).toBe(1);
    expect(await runStates(pool, taskId)).toEqual([[1, 'failed']]);
    expect(executions.get(taskId)).toEqual([1]);
  });

  it('maxDurationMs 20 s with a fixed 5 s retry: retries while the next attempt starts in time, then cancels', async () => {
    const { taskId } = await t.client.spawn(FailsTask, {}, {
      retry: { kind: 'fixed', delayMs: 5_000 }, maxAttempts: 10, cancellation: { maxDurationMs: 20_000 },
    });
    for (let attempt = 1; ; attempt++) {
      // Attempt `attempt` has failed: either attempt + 1 is scheduled, or the task is over.
      const task = await eventually(async () => {
        const row = await taskRow(pool, taskId);
        return row.state === 'cancelled' || row.state === 'failed' || (row.state === 'pending' && row.attempts === attempt + 1) ? row : undefined;
      }, 10_000, `attempt ${attempt} to end`);
      if (task.state !== 'pending') break;
      const { rows } = await pool.query(
        `select (extract(epoch from r.available_at - durable.now()) * 1000)::float8 as remaining_ms
         from durable.tasks t join durable.runs r on r.id = t.run_id where t.id = $1`,
        [taskId],
      );
      await advanceClock(pool, Math.max(rows[0].remaining_ms, 0) + 50);
    }
    // Attempts start at 0, 5, 10 and 15 s; a fifth would start at 20 s or later.
    expect((await taskRow(pool, taskId)).state).toBe('cancelled');
    expect(await runStates(pool, taskId)).toEqual([[1, 'failed'], [2, 'failed'], [3, 'failed'], [4, 'failed']]);
    expect(executions.get(taskId)).toEqual([1, 2, 3, 4]);
  });
});

describe('a task whose name a worker does not know', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let without: DurableTestApp | undefined;
  let withHandler: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await withHandler?.close();
    await without?.close();
    await pool?.end();
    await db?.drop();
  });

  it('is put back without using an attempt, and a worker that has the handler runs it', async () => {
    without = await startApp(db.url, [], { worker: { workerId: 'w-without', unknownTaskDelayMs: 200 } });
    const { taskId } = await without.client.spawn('orphan', { n: 7 });

    // Claimed (started_at set) and put back: pending again, available later, no attempt used.
    const deferred = await eventually(async () => {
      const { rows } = await pool.query(
        `select r.state, r.attempt, r.worker_id, r.error, t.state as task_state, t.attempts, t.error as task_error,
           (extract(epoch from r.available_at - durable.now()) * 1000)::float8 as due_in_ms
         from durable.runs r join durable.tasks t on t.id = r.task_id
         where r.task_id = $1 and r.started_at is not null and r.state = 'pending' and r.available_at > durable.now()`,
        [taskId],
      );
      return rows[0];
    }, 10_000, 'the run to be put back');
    expect(deferred).toMatchObject({ state: 'pending', attempt: 1, worker_id: null, error: null, task_state: 'pending', attempts: 1, task_error: null });
    expect(deferred.due_in_ms).toBeLessThanOrEqual(400);

    // It keeps being put back, never failed, never a second attempt.
    await pause(1_200);
    expect(await taskRow(pool, taskId)).toMatchObject({ attempts: 1, error: null });
    expect(['pending', 'running']).toContain((await taskRow(pool, taskId)).state);
    const { rows: runs } = await pool.query(`select attempt, error from durable.runs where task_id = $1`, [taskId]);
    expect(runs).toEqual([{ attempt: 1, error: null }]);

    withHandler = await startApp(db.url, [OrphanTask], { worker: { workerId: 'w-with' } });
    await expect(withHandler.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 7, attempt: 1 });
    const { rows: finalRuns } = await pool.query(
      `select attempt, state, worker_id, error from durable.runs where task_id = $1`,
      [taskId],
    );
    expect(finalRuns).toEqual([{ attempt: 1, state: 'completed', worker_id: 'w-with', error: null }]);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'completed', attempts: 1, error: null });
    expect(executions.get(taskId)).toEqual([1]);
  });
});

async function settle<T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> {
  return (await Promise.allSettled([promise]))[0]!;
}
