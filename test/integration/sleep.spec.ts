/**
 * ctx.sleepFor / ctx.sleepUntil against a real Postgres: suspension frees the worker slot,
 * the wake time is a checkpoint (replays and retries do not sleep again), past and zero
 * sleeps return at once, bad durations are refused, and two sleeps cannot race for one run.
 *
 * Every handler appends to `trace` on each invocation, so "ran twice" and "did not suspend
 * again" are exact counts; the state log (a trigger) records every state a task went through.
 */
import type pg from 'pg';
import { DurableTask, InvalidArgumentError, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { advanceClock, eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
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

@DurableTask({ name: 'sleep-an-hour' })
class SleepAnHourTask implements DurableTaskHandler<Record<string, never>, { done: boolean }> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    await ctx.step('before', () => {
      mark(ctx, 'step');
      return 'b';
    });
    await ctx.sleepFor('nap', HOUR);
    mark(ctx, 'woke');
    return { done: true };
  }
}

@DurableTask({ name: 'quick' })
class QuickTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    return 'quick';
  }
}

@DurableTask({ name: 'sleep-then-fail', maxAttempts: 3, retry: { kind: 'fixed', delayMs: 10 } })
class SleepThenFailTask implements DurableTaskHandler<Record<string, never>, { attempt: number }> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    await ctx.sleepFor('nap', HOUR);
    mark(ctx, 'woke');
    if (ctx.attempt === 1) throw new Error('fails after waking');
    return { attempt: ctx.attempt };
  }
}

function outcomeName(result: PromiseSettledResult<void>): string {
  if (result.status === 'fulfilled') return 'ok';
  return result.reason instanceof InvalidArgumentError ? 'InvalidArgumentError' : 'stopped';
}

/** Starts two sleeps at once and waits for both outcomes; rethrows the suspension signal. */
@DurableTask({ name: 'two-sleeps-settled' })
class TwoSleepsSettledTask implements DurableTaskHandler<Record<string, never>, string[]> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    const settled = await Promise.allSettled([ctx.sleepFor('a', HOUR), ctx.sleepFor('b', HOUR)]);
    const outcomes = settled.map(outcomeName);
    mark(ctx, outcomes.join(','));
    const stop = settled.find((s) => s.status === 'rejected' && !(s.reason instanceof InvalidArgumentError));
    if (stop) throw (stop as PromiseRejectedResult).reason;
    return outcomes;
  }
}

@DurableTask({ name: 'sleep-until-past' })
class SleepUntilPastTask implements DurableTaskHandler<{ at: string }, string> {
  async run(params: { at: string }, ctx: TaskContext) {
    mark(ctx, 'enter');
    await ctx.sleepUntil('past', new Date(params.at));
    mark(ctx, 'woke');
    return 'ok';
  }
}

@DurableTask({ name: 'sleep-until-future' })
class SleepUntilFutureTask implements DurableTaskHandler<{ at: string }, string> {
  async run(params: { at: string }, ctx: TaskContext) {
    mark(ctx, 'enter');
    await ctx.sleepUntil('later', new Date(params.at));
    mark(ctx, 'woke');
    return 'ok';
  }
}

@DurableTask({ name: 'sleep-zero' })
class SleepZeroTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    await ctx.sleepFor('zero', 0);
    mark(ctx, 'woke');
    return 'ok';
  }
}

@DurableTask({ name: 'sleep-real-300' })
class SleepRealTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    await ctx.sleepFor('short', 300);
    mark(ctx, 'woke');
    return 'ok';
  }
}

/** Calls each bad sleep, catches what it throws and reports the error class it saw. */
@DurableTask({ name: 'bad-durations' })
class BadDurationsTask implements DurableTaskHandler<Record<string, never>, string[]> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    const calls: Array<() => Promise<void>> = [
      () => ctx.sleepFor('negative', -1),
      () => ctx.sleepFor('nan', Number.NaN),
      () => ctx.sleepFor('infinite', Number.POSITIVE_INFINITY),
      () => ctx.sleepFor('minus-infinite', Number.NEGATIVE_INFINITY),
      () => ctx.sleepUntil('invalid-date', new Date('not a date')),
      () => ctx.sleepFor('', 10),
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

/** How a bad sleep reports itself: a rejected promise, like every other async ctx call. */
@DurableTask({ name: 'bad-duration-shape' })
class BadDurationShapeTask implements DurableTaskHandler<Record<string, never>, string[]> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    const calls: Array<() => Promise<void>> = [
      () => ctx.sleepFor('negative', -1),
      () => ctx.sleepUntil('invalid-date', new Date(Number.NaN)),
    ];
    const seen: string[] = [];
    for (const call of calls) {
      let returned: Promise<void>;
      try {
        returned = call();
      } catch (error) {
        seen.push(`threw synchronously: ${(error as Error).name}`);
        continue;
      }
      seen.push(await returned.then(() => 'resolved', (error: Error) => `rejected: ${error.name}`));
    }
    return seen;
  }
}

/** Two sleeps with Promise.all: the refusal rejects at once and the handler returns. */
@DurableTask({ name: 'two-sleeps-all' })
class TwoSleepsAllTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    mark(ctx, 'enter');
    try {
      await Promise.all([ctx.sleepFor('a', 200), ctx.sleepFor('b', 200)]);
      return 'slept';
    } catch (error) {
      return error instanceof InvalidArgumentError ? 'refused' : 'other';
    }
  }
}

interface CheckpointRow {
  name: string;
  value: unknown;
  attempt: number;
  created_at: Date;
}

async function checkpoints(pool: pg.Pool, taskId: string): Promise<CheckpointRow[]> {
  const { rows } = await pool.query<CheckpointRow>(
    'select name, value, attempt, created_at from durable.checkpoints where task_id = $1 order by name',
    [taskId],
  );
  return rows;
}

async function stateIs(t: DurableTestApp, taskId: string, state: string): Promise<boolean> {
  return (await t.client.getTask(taskId))?.state === state;
}

describe('sleepFor with the test clock', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [SleepAnHourTask, QuickTask, SleepThenFailTask, TwoSleepsSettledTask, SleepUntilFutureTask], {
      worker: { concurrency: 1 },
    });
    pool = sqlPool(db.url);
    await installStateLog(pool);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('suspends for an hour of database time, frees the worker slot, then resumes by replaying', async () => {
    const sleeper = await t.client.spawn(SleepAnHourTask, {});
    await eventually(() => stateIs(t, sleeper.taskId, 'sleeping'), 15_000, 'the sleeper to suspend');

    const { rows: runs } = await pool.query(
      `select r.state, r.attempt, r.lease_expires_at,
              extract(epoch from (r.available_at - durable.now())) * 1000 as remaining_ms,
              (select (cp.value->>'wakeAt')::timestamptz = r.available_at
                 from durable.checkpoints cp where cp.task_id = r.task_id and cp.name = 'sleep:nap') as wake_matches
       from durable.runs r where r.task_id = $1`,
      [sleeper.taskId],
    );
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ state: 'sleeping', attempt: 1, lease_expires_at: null, wake_matches: true });
    expect(Number(runs[0].remaining_ms)).toBeGreaterThan(HOUR - 1000);
    expect(Number(runs[0].remaining_ms)).toBeLessThanOrEqual(HOUR);

    // Concurrency is 1: this only runs if the sleeper gave its slot back.
    const quick = await t.client.spawn(QuickTask, {});
    await expect(t.client.awaitResult(quick.taskId, { timeoutMs: 15_000 })).resolves.toBe('quick');
    expect(await t.client.getTask(sleeper.taskId)).toMatchObject({ state: 'sleeping', attempts: 1 });
    expect(traceOf(sleeper.taskId)).toEqual(['enter@1', 'step@1']);

    await advanceClock(pool, HOUR + 1000);
    await expect(t.client.awaitResult(sleeper.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ done: true });

    // Outside-step code ran on both executions; the step before the sleep ran once.
    expect(traceOf(sleeper.taskId)).toEqual(['enter@1', 'step@1', 'enter@1', 'woke@1']);
    expect(await taskStates(pool, sleeper.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'running@1', 'completed@1',
    ]);
    expect(await runStates(pool, sleeper.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'running@1', 'completed@1',
    ]);
    expect((await checkpoints(pool, sleeper.taskId)).map((cp) => [cp.name, cp.value])).toEqual([
      ['sleep:nap', { wakeAt: expect.any(String) }],
      ['step:before', 'b'],
    ]);
  });

  it('checkpoints the wake time: a retry after waking does not sleep again', async () => {
    const task = await t.client.spawn(SleepThenFailTask, {});
    await eventually(() => stateIs(t, task.taskId, 'sleeping'), 15_000, 'the task to suspend');
    const [before] = await checkpoints(pool, task.taskId);
    expect(before).toMatchObject({ name: 'sleep:nap', attempt: 1 });

    await advanceClock(pool, HOUR + 1000);
    // Attempt 2 must complete without another clock jump: a second suspension would sleep an hour.
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ attempt: 2 });

    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1', 'woke@1', 'enter@2', 'woke@2']);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'running@1', 'pending@2', 'running@2', 'completed@2',
    ]);
    const after = await checkpoints(pool, task.taskId);
    expect(after).toEqual([before]);
    const { rows: runs } = await pool.query(
      `select attempt, state, error->>'message' as message from durable.runs where task_id = $1 order by attempt`,
      [task.taskId],
    );
    expect(runs).toEqual([
      { attempt: 1, state: 'failed', message: 'fails after waking' },
      { attempt: 2, state: 'completed', message: null },
    ]);
  });

  it('sleepUntil a future date suspends until exactly that date of the database clock', async () => {
    const { rows: [{ now }] } = await pool.query<{ now: Date }>('select durable.now() as now');
    const at = new Date(now.getTime() + HOUR);
    const task = await t.client.spawn(SleepUntilFutureTask, { at: at.toISOString() });
    await eventually(() => stateIs(t, task.taskId, 'sleeping'), 15_000, 'the task to suspend');
    const { rows: runs } = await pool.query('select state, available_at from durable.runs where task_id = $1', [task.taskId]);
    expect(runs).toEqual([{ state: 'sleeping', available_at: at }]);

    // Just before the date it is still asleep; just after, it resumes.
    await advanceClock(pool, HOUR - 60_000);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await t.client.getTask(task.taskId)).toMatchObject({ state: 'sleeping' });
    await advanceClock(pool, 61_000);
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toBe('ok');
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1', 'woke@1']);
  });

  it('refuses a second sleep started while one is in flight and keeps the run consistent', async () => {
    const task = await t.client.spawn(TwoSleepsSettledTask, {});
    await eventually(() => stateIs(t, task.taskId, 'sleeping'), 15_000, 'the task to suspend');
    // Give the worker time to finish the execution (and to write anything it wrongly would).
    await eventually(() => traceOf(task.taskId).length === 2, 5_000, 'the first execution to finish');

    expect(traceOf(task.taskId)).toEqual(['enter@1', 'stopped,InvalidArgumentError@1']);
    expect((await checkpoints(pool, task.taskId)).map((cp) => cp.name)).toEqual(['sleep:a']);
    const { rows: runs } = await pool.query(
      `select r.state, r.lease_expires_at, r.wake_event,
              (select (cp.value->>'wakeAt')::timestamptz = r.available_at from durable.checkpoints cp
                where cp.task_id = r.task_id and cp.name = 'sleep:a') as wake_matches,
              (select count(*)::int from durable.waits w where w.task_id = r.task_id) as waits
       from durable.runs r where r.task_id = $1`,
      [task.taskId],
    );
    expect(runs).toEqual([{ state: 'sleeping', lease_expires_at: null, wake_event: null, wake_matches: true, waits: 0 }]);
    expect(await t.client.getTask(task.taskId)).toMatchObject({ state: 'sleeping', attempts: 1 });

    // Replay: 'a' is due and returns at once, so 'b' is now the only sleep in flight and suspends.
    await advanceClock(pool, HOUR + 1000);
    await eventually(() => traceOf(task.taskId).length === 4, 15_000, 'the second execution');
    await eventually(() => stateIs(t, task.taskId, 'sleeping'), 15_000, 'the task to suspend on b');
    expect(traceOf(task.taskId).slice(2)).toEqual(['enter@1', 'ok,stopped@1']);
    expect((await checkpoints(pool, task.taskId)).map((cp) => cp.name)).toEqual(['sleep:a', 'sleep:b']);

    await advanceClock(pool, HOUR + 1000);
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual(['ok', 'ok']);
    expect(traceOf(task.taskId).slice(4)).toEqual(['enter@1', 'ok,ok@1']);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'running@1', 'sleeping@1', 'running@1', 'completed@1',
    ]);
  });
});

describe('sleeps that return at once, real-time sleeps and bad durations', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [SleepUntilPastTask, SleepZeroTask, SleepRealTask, BadDurationsTask, BadDurationShapeTask, TwoSleepsAllTask]);
    pool = sqlPool(db.url);
    await installStateLog(pool);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('sleepUntil a past date returns at once: one invocation, no suspension', async () => {
    const at = '2020-01-01T00:00:00.000Z';
    const task = await t.client.spawn(SleepUntilPastTask, { at });
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toBe('ok');
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'woke@1']);
    expect(await taskStates(pool, task.taskId)).toEqual(['pending@1', 'running@1', 'completed@1']);
    const { rows } = await pool.query(
      `select name, (value->>'wakeAt')::timestamptz as wake_at from durable.checkpoints where task_id = $1`,
      [task.taskId],
    );
    expect(rows).toEqual([{ name: 'sleep:past', wake_at: new Date(at) }]);
  });

  it('sleepFor 0 returns at once: one invocation, no suspension', async () => {
    const task = await t.client.spawn(SleepZeroTask, {});
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toBe('ok');
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'woke@1']);
    expect(await taskStates(pool, task.taskId)).toEqual(['pending@1', 'running@1', 'completed@1']);
    expect((await checkpoints(pool, task.taskId)).map((cp) => cp.name)).toEqual(['sleep:zero']);
  });

  it('sleepFor 300 ms in real time suspends and then completes', async () => {
    const task = await t.client.spawn(SleepRealTask, {});
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toBe('ok');
    expect(traceOf(task.taskId)).toEqual(['enter@1', 'enter@1', 'woke@1']);
    expect(await taskStates(pool, task.taskId)).toEqual([
      'pending@1', 'running@1', 'sleeping@1', 'running@1', 'completed@1',
    ]);
    // The resumed execution started no earlier than the checkpointed wake time.
    const { rows } = await pool.query(
      `select (select (value->>'wakeAt')::timestamptz from durable.checkpoints where task_id = $1 and name = 'sleep:short')
                - t.first_started_at >= interval '300 milliseconds' as slept_long_enough
       from durable.tasks t where t.id = $1`,
      [task.taskId],
    );
    expect(rows).toEqual([{ slept_long_enough: true }]);
  });

  it('refuses negative, NaN and infinite durations, an invalid Date and an empty name with InvalidArgumentError', async () => {
    const task = await t.client.spawn(BadDurationsTask, {});
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual([
      'InvalidArgumentError', 'InvalidArgumentError', 'InvalidArgumentError',
      'InvalidArgumentError', 'InvalidArgumentError', 'InvalidArgumentError',
    ]);
    expect(traceOf(task.taskId)).toEqual(['enter@1']);
    expect(await checkpoints(pool, task.taskId)).toEqual([]);
    expect(await taskStates(pool, task.taskId)).toEqual(['pending@1', 'running@1', 'completed@1']);
  });

  it('a bad duration rejects the promise sleepFor/sleepUntil return instead of throwing synchronously', async () => {
    // `ctx.sleepFor(...).catch(...)` and `Promise.all([ctx.sleepFor(...), ...])` rely on this,
    // and step, awaitEvent, emitEvent and heartbeat already behave so (they are async).
    const task = await t.client.spawn(BadDurationShapeTask, {});
    await expect(t.client.awaitResult(task.taskId, { timeoutMs: 15_000 })).resolves.toEqual([
      'rejected: InvalidArgumentError',
      'rejected: InvalidArgumentError',
    ]);
    expect(await checkpoints(pool, task.taskId)).toEqual([]);
  });

  it('a refused concurrent sleep racing the handler return leaves task, run and checkpoints consistent', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await t.client.spawn(TwoSleepsAllTask, {})).taskId);
    for (const taskId of ids) {
      // Either the return wins (completed 'refused', the sleep fenced off and nothing written)
      // or the sleep wins (the return is ignored; the task replays until both sleeps are done).
      const result = await t.client.awaitResult<string>(taskId, { timeoutMs: 20_000 });
      const names = (await checkpoints(pool, taskId)).map((cp) => cp.name);
      const { rows: runs } = await pool.query(
        `select attempt, state, lease_expires_at from durable.runs where task_id = $1`,
        [taskId],
      );
      expect(runs).toEqual([{ attempt: 1, state: 'completed', lease_expires_at: null }]);
      if (result === 'refused') {
        expect(names).toEqual([]);
        expect(traceOf(taskId)).toEqual(['enter@1']);
        expect(await taskStates(pool, taskId)).toEqual(['pending@1', 'running@1', 'completed@1']);
      } else {
        expect(result).toBe('slept');
        expect(names).toEqual(['sleep:a', 'sleep:b']);
        expect(traceOf(taskId)).toEqual(['enter@1', 'enter@1', 'enter@1']);
        expect(await taskStates(pool, taskId)).toEqual([
          'pending@1', 'running@1', 'sleeping@1', 'running@1', 'sleeping@1', 'running@1', 'completed@1',
        ]);
      }
    }
    const { rows: waits } = await pool.query('select count(*)::int as n from durable.waits where task_id = any($1)', [ids]);
    expect(waits).toEqual([{ n: 0 }]);
  });
});
