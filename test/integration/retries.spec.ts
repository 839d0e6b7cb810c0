/**
 * Retry strategies, their precedence, and `client.retry`. Every describe block has its own
 * database and moves that database's clock, so delays are checked exactly against the stored
 * times (`runs.finished_at` of the failed attempt, `runs.available_at` of the next).
 */
import type pg from 'pg';
import {
  DurableTask, InvalidArgumentError, TaskNotFoundError, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { RemoteControl } from '../fixtures/leases-remote-control.js';
import { advanceClock, eventually, sleep as pause, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const TERMINAL = ['completed', 'failed', 'cancelled'];
const executions = new Map<string, number[]>();
function recordExecution(ctx: TaskContext): void {
  executions.set(ctx.taskId, [...(executions.get(ctx.taskId) ?? []), ctx.attempt]);
}

@DurableTask({ name: 'always-fails' })
class AlwaysFailsTask implements DurableTaskHandler<unknown, never> {
  async run(_params: unknown, ctx: TaskContext): Promise<never> {
    recordExecution(ctx);
    throw new Error(`boom ${ctx.attempt}`);
  }
}

@DurableTask({ name: 'fails-once' })
class FailsOnceTask implements DurableTaskHandler<unknown, { attempt: number }> {
  async run(_params: unknown, ctx: TaskContext) {
    recordExecution(ctx);
    if (ctx.attempt === 1) throw new Error('first attempt fails');
    return { attempt: ctx.attempt };
  }
}

@DurableTask({ name: 'overridden', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 3_000 } })
class OverriddenTask implements DurableTaskHandler<unknown, never> {
  async run(_params: unknown, ctx: TaskContext): Promise<never> {
    recordExecution(ctx);
    throw new Error(`overridden boom ${ctx.attempt}`);
  }
}

const stepCalls = new Map<string, string[]>();
function recordStep(taskId: string, step: string): void {
  stepCalls.set(taskId, [...(stepCalls.get(taskId) ?? []), step]);
}

/** Step `b` throws on attempt 1 only. */
@DurableTask({ name: 'retry-me' })
class RetryMeTask implements DurableTaskHandler<unknown, { a: string; b: string; attempt: number }> {
  async run(_params: unknown, ctx: TaskContext) {
    recordExecution(ctx);
    const a = await ctx.step('a', () => (recordStep(ctx.taskId, 'a'), 'a-value'));
    const b = await ctx.step('b', () => {
      recordStep(ctx.taskId, `b@${ctx.attempt}`);
      if (ctx.attempt === 1) throw new Error('b fails on attempt 1');
      return 'b-value';
    });
    return { a, b, attempt: ctx.attempt };
  }
}

@DurableTask({ name: 'retry-sleeper' })
class RetrySleeperTask implements DurableTaskHandler<unknown, { attempt: number }> {
  async run(_params: unknown, ctx: TaskContext) {
    recordExecution(ctx);
    await ctx.step('a', () => (recordStep(ctx.taskId, 'a'), 'a-value'));
    await ctx.sleepFor('nap', 10_000);
    return { attempt: ctx.attempt };
  }
}

const remote = new RemoteControl();

@DurableTask({ name: 'remote' })
class RemoteTask implements DurableTaskHandler<unknown, unknown> {
  run(_params: unknown, ctx: TaskContext): Promise<unknown> {
    return remote.serve(ctx);
  }
}

interface RunRow {
  attempt: number;
  state: string;
  error: Record<string, unknown> | null;
  started_at: Date | null;
}

async function runsOf(pool: pg.Pool, taskId: string): Promise<RunRow[]> {
  const { rows } = await pool.query<RunRow>(
    `select attempt, state, error, started_at from durable.runs where task_id = $1 order by attempt`,
    [taskId],
  );
  return rows;
}

async function taskRow(pool: pg.Pool, taskId: string) {
  const { rows } = await pool.query(
    `select state, attempts, max_attempts, retry, result, error from durable.tasks where id = $1`,
    [taskId],
  );
  return rows[0] as { state: string; attempts: number; max_attempts: number; retry: unknown; result: unknown; error: Record<string, unknown> | null };
}

/** The next attempt's delay after attempt `attempt` failed: its available_at minus that failure's finished_at. */
async function retryDelay(pool: pg.Pool, taskId: string, attempt: number) {
  const { rows } = await pool.query(
    `select (extract(epoch from next.available_at - failed.finished_at) * 1000)::float8 as delay_ms,
       (extract(epoch from next.available_at - durable.now()) * 1000)::float8 as remaining_ms,
       next.state as next_state
     from durable.runs failed join durable.runs next on next.task_id = failed.task_id and next.attempt = failed.attempt + 1
     where failed.task_id = $1 and failed.attempt = $2`,
    [taskId, attempt],
  );
  return rows[0] as { delay_ms: number; remaining_ms: number; next_state: string } | undefined;
}


/**
 * Lets the task fail attempt after attempt, moving the database clock to each next attempt's
 * `available_at`, until the task is terminal. Returns the delays (ms) between each failure and
 * the next attempt's `available_at`. With `checkHeld`, also checks that each next attempt is not
 * started while its time has not come.
 */
async function driveRetries(pool: pg.Pool, taskId: string, checkHeld = false): Promise<number[]> {
  const delays: number[] = [];
  for (let attempt = 1; ; attempt++) {
    const outcome = await eventually(async () => {
      const task = await taskRow(pool, taskId);
      if (TERMINAL.includes(task.state)) return 'terminal';
      const next = await retryDelay(pool, taskId, attempt);
      return next ? 'retrying' : undefined;
    }, 15_000, `attempt ${attempt} of task ${taskId} to fail`);
    if (outcome === 'terminal') return delays;

    const next = (await retryDelay(pool, taskId, attempt))!;
    delays.push(next.delay_ms);
    expect(next.next_state).toBe('pending');
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'pending', attempts: attempt + 1 });
    if (checkHeld && next.remaining_ms > 2_500) {
      // To 2 s before the next attempt is due, then more than three poll intervals of real time.
      await advanceClock(pool, next.remaining_ms - 2_000);
      await pause(700);
      const held = (await runsOf(pool, taskId))[attempt]!;
      expect(held).toMatchObject({ attempt: attempt + 1, state: 'pending', started_at: null });
      expect((await taskRow(pool, taskId)).state).toBe('pending');
    }
    const { remaining_ms } = (await retryDelay(pool, taskId, attempt))!;
    await advanceClock(pool, Math.max(remaining_ms, 0) + 50);
  }
}

function expectDelays(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((delay, i) => expect(Math.abs(delay - expected[i]!)).toBeLessThanOrEqual(100));
}

describe('retry strategies', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [AlwaysFailsTask, FailsOnceTask]);
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('fixed 5 s, maxAttempts 2: attempt 2 is available 5 s after attempt 1 failed, held until then, then runs', async () => {
    const { taskId } = await t.client.spawn('fails-once', {}, { retry: { kind: 'fixed', delayMs: 5_000 }, maxAttempts: 2 });
    const delays = await driveRetries(pool, taskId, true);
    expectDelays(delays, [5_000]);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toEqual({ attempt: 2 });
    const runs = await runsOf(pool, taskId);
    expect(runs.map((run) => [run.attempt, run.state])).toEqual([[1, 'failed'], [2, 'completed']]);
    expect(runs[0]!.error).toMatchObject({ name: 'Error', message: 'first attempt fails' });
    expect(executions.get(taskId)).toEqual([1, 2]);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'completed', attempts: 2, error: null });
  });

  it('exponential base 2 s, factor 2, cap 5 s: delays 2 s, 4 s, 5 s, 5 s, then failed', async () => {
    const { taskId } = await t.client.spawn('always-fails', {}, {
      retry: { kind: 'exponential', baseDelayMs: 2_000, factor: 2, maxDelayMs: 5_000 },
      maxAttempts: 5,
    });
    expectDelays(await driveRetries(pool, taskId), [2_000, 4_000, 5_000, 5_000]);
    const runs = await runsOf(pool, taskId);
    expect(runs.map((run) => [run.attempt, run.state])).toEqual([1, 2, 3, 4, 5].map((n) => [n, 'failed']));
    expect(await taskRow(pool, taskId)).toMatchObject({
      state: 'failed', attempts: 5, result: null, error: { name: 'Error', message: 'boom 5' },
    });
    expect(executions.get(taskId)).toEqual([1, 2, 3, 4, 5]);
  });

  it('default strategy: exponential from 1 s, factor 2, maxAttempts 5', async () => {
    const { taskId } = await t.client.spawn('always-fails', {});
    expect(await taskRow(pool, taskId)).toMatchObject({
      max_attempts: 5,
      retry: { kind: 'exponential', baseDelayMs: 1_000, factor: 2, maxDelayMs: 300_000 },
    });
    expectDelays(await driveRetries(pool, taskId), [1_000, 2_000, 4_000, 8_000]);
    expect((await runsOf(pool, taskId)).map((run) => run.state)).toEqual(Array(5).fill('failed'));
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 5, error: { message: 'boom 5' } });
    expect(await t.client.getTask(taskId)).toMatchObject({ state: 'failed', attempts: 5 });
  });
});

describe('precedence: spawn options over @DurableTask over module defaults', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [AlwaysFailsTask, OverriddenTask], {
      defaults: { maxAttempts: 3, retry: { kind: 'fixed', delayMs: 7_000 } },
    });
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('module defaults apply to a task without options', async () => {
    const { taskId } = await t.client.spawn(AlwaysFailsTask, {});
    expectDelays(await driveRetries(pool, taskId), [7_000, 7_000]);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 3, max_attempts: 3 });
    expect(await runsOf(pool, taskId)).toHaveLength(3);
  });

  it('@DurableTask retry and maxAttempts override the module defaults', async () => {
    const { taskId } = await t.client.spawn(OverriddenTask, {});
    expectDelays(await driveRetries(pool, taskId), [3_000]);
    expect(await taskRow(pool, taskId)).toMatchObject({
      state: 'failed', attempts: 2, max_attempts: 2, error: { message: 'overridden boom 2' },
    });
    expect(await runsOf(pool, taskId)).toHaveLength(2);
  });

  it('a spawn by name also uses the @DurableTask options, and spawn options override them field by field', async () => {
    const byName = await t.client.spawn('overridden', {});
    expect(await taskRow(pool, byName.taskId)).toMatchObject({ max_attempts: 2, retry: { kind: 'fixed', delayMs: 3_000 } });
    expectDelays(await driveRetries(pool, byName.taskId), [3_000]);

    // Only retry set on spawn: maxAttempts still comes from @DurableTask (2).
    const retryOnly = await t.client.spawn(OverriddenTask, {}, { retry: { kind: 'fixed', delayMs: 1_500 } });
    expectDelays(await driveRetries(pool, retryOnly.taskId), [1_500]);
    expect(await taskRow(pool, retryOnly.taskId)).toMatchObject({ state: 'failed', attempts: 2 });

    // Only maxAttempts set on spawn: retry still comes from the module defaults (fixed 7 s).
    const attemptsOnly = await t.client.spawn(AlwaysFailsTask, {}, { maxAttempts: 2 });
    expectDelays(await driveRetries(pool, attemptsOnly.taskId), [7_000]);
    expect(await taskRow(pool, attemptsOnly.taskId)).toMatchObject({ state: 'failed', attempts: 2 });
  });
});

describe('client.retry(taskId)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [RetryMeTask, RetrySleeperTask, RemoteTask]);
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('gives a failed task a new attempt beyond maxAttempts, keeping its checkpoints', async () => {
    const { taskId } = await t.client.spawn(RetryMeTask, {}, { maxAttempts: 1 });
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).rejects.toMatchObject({ name: 'TaskFailedError' });
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 1, max_attempts: 1 });

    await t.client.retry(taskId);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toEqual({ a: 'a-value', b: 'b-value', attempt: 2 });
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'completed', attempts: 2, max_attempts: 2, error: null });
    expect((await runsOf(pool, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'failed'], [2, 'completed']]);
    // Step a ran once (attempt 1); attempt 2 replayed it and only ran b.
    expect(stepCalls.get(taskId)).toEqual(['a', 'b@1', 'b@2']);
    const { rows } = await pool.query(`select name, attempt from durable.checkpoints where task_id = $1 order by name`, [taskId]);
    expect(rows).toEqual([{ name: 'step:a', attempt: 1 }, { name: 'step:b', attempt: 2 }]);
  });

  it('gives a cancelled task a new attempt, keeping its checkpoints (also the wake time of its sleep)', async () => {
    const { taskId } = await t.client.spawn(RetrySleeperTask, {});
    await eventually(async () => (await taskRow(pool, taskId)).state === 'sleeping', 10_000, 'the task to sleep');
    const { rows: [sleep] } = await pool.query(
      `select value->>'wakeAt' as wake_at from durable.checkpoints where task_id = $1 and name = 'sleep:nap'`,
      [taskId],
    );
    await t.client.cancel(taskId);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'cancelled', attempts: 1 });

    await t.client.retry(taskId);
    // Attempt 2 replays step a and goes back to sleep until the same wake time.
    await eventually(
      async () => (await runsOf(pool, taskId))[1]?.state === 'sleeping',
      10_000,
      'attempt 2 to sleep',
    );
    const { rows: [run2] } = await pool.query(
      `select available_at from durable.runs where task_id = $1 and attempt = 2`,
      [taskId],
    );
    expect(run2.available_at.getTime()).toBe(new Date(sleep.wake_at).getTime());
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'sleeping', attempts: 2 });

    await advanceClock(pool, 10_000);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toEqual({ attempt: 2 });
    expect((await runsOf(pool, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'cancelled'], [2, 'completed']]);
    expect(stepCalls.get(taskId)).toEqual(['a']);
    expect(executions.get(taskId)).toEqual([1, 2, 2]);
  });

  it('refuses a completed, running or pending task with InvalidArgumentError and changes nothing', async () => {
    const running = await t.client.spawn('remote', {});
    const exec = await remote.execution(running.taskId);
    await expect(t.client.retry(running.taskId)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await taskRow(pool, running.taskId)).toMatchObject({ state: 'running', attempts: 1 });
    expect(await runsOf(pool, running.taskId)).toHaveLength(1);

    exec.finish('done');
    await expect(t.client.awaitResult(running.taskId, { timeoutMs: 10_000 })).resolves.toBe('done');
    await expect(t.client.retry(running.taskId)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await taskRow(pool, running.taskId)).toMatchObject({ state: 'completed', attempts: 1, result: 'done' });
    expect(await runsOf(pool, running.taskId)).toHaveLength(1);

    const pending = await t.client.spawn('remote', {}, { delayMs: 3_600_000 });
    await expect(t.client.retry(pending.taskId)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await taskRow(pool, pending.taskId)).toMatchObject({ state: 'pending', attempts: 1 });
    expect(await runsOf(pool, pending.taskId)).toHaveLength(1);
    await t.client.cancel(pending.taskId);
  });

  it('rejects an unknown id with TaskNotFoundError and a malformed one with InvalidArgumentError', async () => {
    await expect(t.client.retry('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(TaskNotFoundError);
    await expect(t.client.retry('not-a-task-id')).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
