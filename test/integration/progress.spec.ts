/**
 * ctx.setProgress against a real Postgres: null before the first call, last write wins, any
 * JSON, not replayed, coalesced (a thousand calls are a handful of writes), refused from a
 * cancelled run and from a run whose lease was taken over, and bad values refused at once.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { DurableTask, SerializationError, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const latches = new Map<string, () => void>();
const latch = (key: string) => new Promise<void>((resolve) => latches.set(key, resolve));
const outcomes = new Map<string, string[]>();
const note = (taskId: string, what: string) => outcomes.set(taskId, [...(outcomes.get(taskId) ?? []), what]);

@DurableTask({ name: 'progress-values' })
class ValuesTask implements DurableTaskHandler<{ values: unknown[] }, string> {
  async run(params: { values: unknown[] }, ctx: TaskContext) {
    await ctx.step('set', async () => {
      for (const value of params.values) await ctx.setProgress(value);
      return null;
    });
    await latch(`${ctx.taskId}:end`);
    return 'done';
  }
}

@DurableTask({ name: 'progress-loop' })
class LoopTask implements DurableTaskHandler<{ n: number }, number> {
  async run(params: { n: number }, ctx: TaskContext) {
    let last: Promise<void> = Promise.resolve();
    for (let i = 1; i <= params.n; i++) last = ctx.setProgress({ i });
    await last;
    return params.n;
  }
}

@DurableTask({ name: 'progress-cancelled' })
class CancelledTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    await ctx.setProgress('before');
    await latch(`${ctx.taskId}:go`);
    try {
      await ctx.setProgress('after-cancel');
      note(ctx.taskId, 'accepted');
    } catch (error) {
      note(ctx.taskId, `refused:${(error as Error).name}`);
      throw error;
    }
    return 'never';
  }
}

@DurableTask({ name: 'progress-fenced', queue: 'short-lease', retry: { kind: 'fixed', delayMs: 50 } })
class FencedTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    if (ctx.attempt === 1) {
      await ctx.setProgress('attempt-1');
      await latch(`${ctx.taskId}:stale`); // released once attempt 2 completed: this lease is long gone
      try {
        await ctx.setProgress('stale');
        note(ctx.taskId, 'accepted');
      } catch (error) {
        note(ctx.taskId, `refused:${(error as Error).name}`);
      }
      return 'attempt-1';
    }
    await ctx.setProgress('fresh');
    return 'attempt-2';
  }
}

@DurableTask({ name: 'progress-bad' })
class BadTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    try {
      void ctx.setProgress({ big: 1n });
    } catch (error) {
      return (error as Error).name;
    }
    return 'accepted';
  }
}

describe('ctx.setProgress', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let sql: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [ValuesTask, LoopTask, CancelledTask, FencedTask, BadTask], {
      worker: { queues: ['default', 'short-lease'], concurrency: 8, leaseMs: 400, pollIntervalMs: 50 },
    });
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  it('is null before the first call, then the last value written, any JSON', async () => {
    const values = [1, 'two', { three: [3, { deep: true }] }, null, [4, 'x'], { phase: 'last', pct: 99.5 }];
    const { taskId } = await t.client.spawn(ValuesTask, { values });
    expect((await t.client.getTask(taskId))!.progress).toBeNull();
    await eventually(async () => latches.has(`${taskId}:end`), 15_000, 'the step to end');
    expect((await t.client.getTask(taskId))!.progress).toEqual({ phase: 'last', pct: 99.5 });
    latches.get(`${taskId}:end`)!();
    await t.client.awaitResult(taskId, { timeoutMs: 15_000 });
    const done = (await t.client.getTask(taskId))!;
    expect(done.progress).toEqual({ phase: 'last', pct: 99.5 }); // kept after completion, not a checkpoint
    const checkpoints = await sql.query(`select name from durable.checkpoints where task_id = $1 order by name`, [taskId]);
    expect(checkpoints.rows.map((row) => row.name)).toEqual(['step:set']);
  });

  it('coalesces: a thousand calls in a loop are a handful of writes, and the last value wins', async () => {
    await sql.query(`
      create table if not exists public.progress_log (task_id uuid, progress text);
      create or replace function public.log_progress() returns trigger language plpgsql as $$
      begin
        if new.progress::text is distinct from old.progress::text then
          insert into public.progress_log values (new.id, new.progress::text);
        end if;
        return new;
      end $$;
      drop trigger if exists log_progress on durable.tasks;
      create trigger log_progress after update on durable.tasks for each row execute function public.log_progress();`);
    const { taskId } = await t.client.spawn(LoopTask, { n: 1000 });
    await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBe(1000);
    expect((await t.client.getTask(taskId))!.progress).toEqual({ i: 1000 });
    const writes = await sql.query(`select progress from public.progress_log where task_id = $1`, [taskId]);
    expect(writes.rows.length).toBeGreaterThanOrEqual(1);
    expect(writes.rows.length).toBeLessThanOrEqual(5);
    expect(writes.rows.at(-1)!.progress).toBe('{"i":1000}');
  });

  it('is refused from a cancelled run, and the stored value stays', async () => {
    const { taskId } = await t.client.spawn(CancelledTask, {});
    await eventually(async () => latches.has(`${taskId}:go`), 15_000, 'the handler to wait');
    await eventually(async () => (await t.client.getTask(taskId))!.progress === 'before', 15_000, 'the first value');
    await t.client.cancel(taskId);
    latches.get(`${taskId}:go`)!();
    await eventually(async () => outcomes.has(taskId), 15_000, 'the second call to settle');
    expect(outcomes.get(taskId)).toEqual(['refused:DurableControlSignal']);
    const task = (await t.client.getTask(taskId))!;
    expect(task.state).toBe('cancelled');
    expect(task.progress).toBe('before');
  });

  it('is refused from a run whose lease expired and was taken over', async () => {
    const { taskId } = await t.client.spawn(FencedTask, {});
    await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('attempt-2');
    expect((await t.client.getTask(taskId))!.progress).toBe('fresh');
    latches.get(`${taskId}:stale`)!();
    await eventually(async () => outcomes.has(taskId), 15_000, 'the stale call to settle');
    expect(outcomes.get(taskId)).toEqual(['refused:DurableControlSignal']);
    expect((await t.client.getTask(taskId))!.progress).toBe('fresh');
  });

  it('refuses a value that is not JSON at once, writing nothing', async () => {
    const { taskId } = await t.client.spawn(BadTask, {});
    await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBe(SerializationError.name);
    expect((await t.client.getTask(taskId))!.progress).toBeNull();
  });

  it('is null in snapshots of tasks that never set it', async () => {
    const missing = await t.client.getTask(randomUUID());
    expect(missing).toBeNull();
    const [first] = await t.client.listTasks({ name: 'progress-bad' });
    expect(first.progress).toBeNull();
  });
});
