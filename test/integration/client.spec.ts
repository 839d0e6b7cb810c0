import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import {
  DurableError, DurableTask, InvalidArgumentError, NonRetryableError, TaskCancelledError, TaskFailedError, TaskNotFoundError,
  TimeoutError, type DurableTaskHandler, type TaskContext, type TaskSnapshot, type TaskState,
} from '../../lib/index.js';
import { advanceClock, eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const HOUR = 3_600_000;

class BoomError extends Error {
  override name = 'BoomError';
}

@DurableTask({ name: 'echo' })
class EchoTask implements DurableTaskHandler<unknown, { echo: unknown }> {
  async run(params: unknown) {
    return { echo: params };
  }
}

@DurableTask({ name: 'returns-null' })
class ReturnsNullTask implements DurableTaskHandler<unknown, null> {
  async run() {
    return null;
  }
}

@DurableTask({ name: 'boom', retry: { kind: 'none' } })
class BoomTask implements DurableTaskHandler<{ n: number }, never> {
  async run(params: { n: number }): Promise<never> {
    throw new BoomError(`boom ${params.n}`);
  }
}

/** Fails its first attempt, so it has two runs. */
@DurableTask({ name: 'flaky', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 0 } })
class FlakyTask implements DurableTaskHandler<unknown, never> {
  async run(_params: unknown, ctx: TaskContext): Promise<never> {
    await ctx.step(`attempt-${ctx.attempt}`, () => ctx.attempt);
    if (ctx.attempt === 1) throw new BoomError('first attempt');
    throw new NonRetryableError('second attempt');
  }
}

@DurableTask({ name: 'work' })
class WorkTask implements DurableTaskHandler<{ n: number }, { n: number }> {
  async run(params: { n: number }, ctx: TaskContext) {
    const n = await ctx.step('double', () => params.n * 2);
    return { n };
  }
}

@DurableTask({ name: 'waiter' })
class WaiterTask implements DurableTaskHandler<unknown, unknown> {
  async run(_params: unknown, ctx: TaskContext) {
    await ctx.step('before', () => 'before');
    return ctx.awaitEvent('never-emitted');
  }
}

const HANDLERS = [EchoTask, ReturnsNullTask, BoomTask, FlakyTask, WorkTask, WaiterTask];
const SNAPSHOT_KEYS = ['attempts', 'createdAt', 'headers', 'name', 'params', 'parentTaskId', 'progress', 'queue', 'state', 'taskId', 'updatedAt', 'waitingFor'];

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error as Error,
  );
}

describe('DurableClient', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;
  /** worker: false, default queue 'parked': what it spawns is never executed. */
  let producer: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, HANDLERS);
    producer = await startApp(db.url, [], { worker: false, queue: 'parked' });
  });
  afterAll(async () => {
    await producer?.close();
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  describe('getTask', () => {
    it('returns the full snapshot of a completed task', async () => {
      const spawned = await t.client.spawn(EchoTask, { a: [1, 'x'] }, { headers: { trace: 'abc' } });
      await t.client.awaitResult(spawned.taskId, { timeoutMs: 15_000 });
      const snapshot = (await t.client.getTask(spawned.taskId))!;
      expect(Object.keys(snapshot).sort()).toEqual([...SNAPSHOT_KEYS, 'result'].sort());
      expect(snapshot).toEqual({
        taskId: spawned.taskId,
        name: 'echo',
        queue: 'default',
        state: 'completed',
        attempts: 1,
        params: { a: [1, 'x'] },
        headers: { trace: 'abc' },
        result: { echo: { a: [1, 'x'] } },
        createdAt: expect.any(Date),
        updatedAt: expect.any(Date),
        parentTaskId: null,
        progress: null,
        waitingFor: null,
      });
      const row = (await sql.query(`select created_at, updated_at from durable.tasks where id = $1`, [spawned.taskId])).rows[0];
      expect(snapshot.createdAt.getTime()).toBe(row.created_at.getTime());
      expect(snapshot.updatedAt.getTime()).toBe(row.updated_at.getTime());
      expect(snapshot.updatedAt.getTime()).toBeGreaterThanOrEqual(snapshot.createdAt.getTime());
    });

    it('keeps a null result as a result', async () => {
      const { taskId } = await t.client.spawn(ReturnsNullTask, {});
      await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBeNull();
      const snapshot = (await t.client.getTask(taskId))!;
      expect(snapshot.state).toBe('completed');
      expect('result' in snapshot).toBe(true);
      expect(snapshot.result).toBeNull();
    });

    it('returns the full snapshot of a failed task, with its error', async () => {
      const { taskId } = await t.client.spawn(BoomTask, { n: 3 });
      await eventually(async () => (await t.client.getTask(taskId))?.state === 'failed', 15_000, 'the task to fail');
      const snapshot = (await t.client.getTask(taskId))!;
      expect(Object.keys(snapshot).sort()).toEqual([...SNAPSHOT_KEYS, 'error'].sort());
      expect(snapshot).toEqual({
        taskId,
        name: 'boom',
        queue: 'default',
        state: 'failed',
        attempts: 1,
        params: { n: 3 },
        headers: {},
        error: expect.objectContaining({ name: 'BoomError', message: 'boom 3' }),
        createdAt: expect.any(Date),
        updatedAt: expect.any(Date),
        parentTaskId: null,
        progress: null,
        waitingFor: null,
      });
    });

    it('returns the full snapshot of a pending task, without result or error', async () => {
      const { taskId } = await producer.client.spawn('echo', { p: true });
      const snapshot = (await producer.client.getTask(taskId))!;
      expect(Object.keys(snapshot).sort()).toEqual(SNAPSHOT_KEYS);
      expect(snapshot).toEqual({
        taskId,
        name: 'echo',
        queue: 'parked',
        state: 'pending',
        attempts: 1,
        params: { p: true },
        headers: {},
        createdAt: expect.any(Date),
        updatedAt: expect.any(Date),
        parentTaskId: null,
        progress: null,
        // Nothing polls queue 'parked'.
        waitingFor: { reason: 'noWorker', message: expect.stringContaining('queue "parked"') },
      });
    });

    it('returns null for an unknown id and refuses a malformed one', async () => {
      await expect(t.client.getTask(randomUUID())).resolves.toBeNull();
      await expect(t.client.getTask('not-a-uuid')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.getTask('')).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.getTask(`${randomUUID()}'; drop table durable.tasks; --`)).rejects.toBeInstanceOf(InvalidArgumentError);
    });
  });

  describe('awaitResult', () => {
    it('resolves with the result', async () => {
      const { taskId } = await t.client.spawn(WorkTask, { n: 21 });
      await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 42 });
    });

    it('rejects with TaskFailedError carrying the recorded error', async () => {
      const { taskId } = await t.client.spawn(BoomTask, { n: 9 });
      const error = await rejection(t.client.awaitResult(taskId, { timeoutMs: 15_000 }));
      expect(error).toBeInstanceOf(TaskFailedError);
      const failed = error as TaskFailedError;
      expect(failed.taskId).toBe(taskId);
      expect(failed.error).toEqual(expect.objectContaining({ name: 'BoomError', message: 'boom 9' }));
      expect(failed.message).toContain('boom 9');
    });

    it('rejects with TaskCancelledError for a cancelled task', async () => {
      const { taskId } = await producer.client.spawn('echo', {});
      const waiting = rejection(producer.client.awaitResult(taskId, { timeoutMs: 15_000 }));
      await producer.client.cancel(taskId);
      const error = await waiting;
      expect(error).toBeInstanceOf(TaskCancelledError);
      expect((error as TaskCancelledError).taskId).toBe(taskId);
    });

    it('rejects with TimeoutError after timeoutMs for a task that never finishes', async () => {
      const { taskId } = await producer.client.spawn('echo', {});
      const startedAt = Date.now();
      const error = await rejection(producer.client.awaitResult(taskId, { timeoutMs: 400 }));
      expect(error).toBeInstanceOf(TimeoutError);
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(390);
      expect((await producer.client.getTask(taskId))!.state).toBe('pending');
      // timeoutMs 0 checks once and gives up at once.
      await expect(producer.client.awaitResult(taskId, { timeoutMs: 0 })).rejects.toBeInstanceOf(TimeoutError);
    });

    it('rejects with TaskNotFoundError for an unknown task', async () => {
      const id = randomUUID();
      const error = await rejection(t.client.awaitResult(id, { timeoutMs: 1000 }));
      expect(error).toBeInstanceOf(TaskNotFoundError);
      expect((error as TaskNotFoundError).taskId).toBe(id);
    });

    it('refuses an invalid timeoutMs or id', async () => {
      const { taskId } = await producer.client.spawn('echo', {});
      await expect(t.client.awaitResult(taskId, { timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.awaitResult(taskId, { timeoutMs: Number.NaN })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.awaitResult('nope', { timeoutMs: 10 })).rejects.toBeInstanceOf(InvalidArgumentError);
    });
  });

  describe('listTasks', () => {
    const spawned: { taskId: string; name: string }[] = [];

    beforeAll(async () => {
      // Nobody polls 'list-queue'; spawned one after the other, so creation times are ordered.
      for (let i = 0; i < 9; i++) {
        const name = i % 3 === 0 ? 'list-b' : 'list-a';
        const { taskId } = await producer.client.spawn(name, { i }, { queue: 'list-queue' });
        spawned.push({ taskId, name });
      }
      await producer.client.cancel(spawned[1].taskId);
      await producer.client.cancel(spawned[4].taskId);
    });

    const newestFirst = () => [...spawned].reverse().map((task) => task.taskId);
    const ids = (tasks: TaskSnapshot[]) => tasks.map((task) => task.taskId);

    it('lists newest first and filters by queue', async () => {
      const tasks = await t.client.listTasks({ queue: 'list-queue' });
      expect(ids(tasks)).toEqual(newestFirst());
      expect(tasks.every((task) => task.queue === 'list-queue')).toBe(true);
      expect(tasks[0]).toEqual(await t.client.getTask(tasks[0].taskId));

      const all = await t.client.listTasks({ limit: 1000 });
      const { rows } = await sql.query<{ n: number }>(`select count(*)::int as n from durable.tasks`);
      expect(all).toHaveLength(rows[0].n);
      for (let i = 1; i < all.length; i++) {
        expect(all[i - 1].createdAt.getTime()).toBeGreaterThanOrEqual(all[i].createdAt.getTime());
      }
    });

    it('filters by state and by name, also combined', async () => {
      const cancelled = await t.client.listTasks({ queue: 'list-queue', state: 'cancelled' });
      expect(ids(cancelled)).toEqual([spawned[4].taskId, spawned[1].taskId]);
      const pendingB = await t.client.listTasks({ queue: 'list-queue', state: 'pending', name: 'list-b' });
      expect(ids(pendingB)).toEqual([spawned[6].taskId, spawned[3].taskId, spawned[0].taskId]);
      const byName = await t.client.listTasks({ name: 'list-a' });
      expect(ids(byName)).toEqual(newestFirst().filter((id) => spawned.find((task) => task.taskId === id)!.name === 'list-a'));
      await expect(t.client.listTasks({ queue: 'no-such-queue' })).resolves.toEqual([]);
      // Names are data: no pattern matching, no case folding.
      await expect(t.client.listTasks({ name: 'list-%' })).resolves.toEqual([]);
      await expect(t.client.listTasks({ name: 'LIST-A' })).resolves.toEqual([]);
    });

    it('honours limit', async () => {
      const tasks = await t.client.listTasks({ queue: 'list-queue', limit: 4 });
      expect(ids(tasks)).toEqual(newestFirst().slice(0, 4));
    });

    it('pages with a cursor through every task exactly once', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const tasks = await t.client.listTasks({ queue: 'list-queue', limit: 2, cursor });
        if (tasks.length === 0) break;
        expect(tasks.length).toBeLessThanOrEqual(2);
        seen.push(...ids(tasks));
        cursor = tasks[tasks.length - 1].taskId;
      }
      expect(seen).toEqual(newestFirst());
      expect(new Set(seen).size).toBe(spawned.length);
    });

    it('pages correctly when tasks share a creation time', async () => {
      const tied: string[] = [];
      for (let i = 0; i < 7; i++) tied.push((await producer.client.spawn('tie', { i }, { queue: 'tie-queue' })).taskId);
      await sql.query(`update durable.tasks set created_at = '2030-01-01T00:00:00Z' where queue = 'tie-queue'`);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const tasks = await t.client.listTasks({ queue: 'tie-queue', limit: 3, cursor });
        if (tasks.length === 0) break;
        seen.push(...ids(tasks));
        cursor = tasks[tasks.length - 1].taskId;
      }
      expect(seen).toHaveLength(7);
      expect(new Set(seen)).toEqual(new Set(tied));
      expect(seen).toEqual(ids(await t.client.listTasks({ queue: 'tie-queue' })));
    });

    it('does not silently end paging when the cursor task was cleaned up meanwhile', async () => {
      const tasks: string[] = [];
      for (let i = 0; i < 5; i++) tasks.push((await producer.client.spawn('paged', { i }, { queue: 'paged-queue' })).taskId);
      const firstPage = await t.client.listTasks({ queue: 'paged-queue', limit: 2 });
      expect(ids(firstPage)).toEqual([tasks[4], tasks[3]]);
      // The last task of the page ends and is cleaned up before the next page is read.
      await producer.client.cancel(tasks[3]);
      await expect(t.client.cleanup({ queue: 'paged-queue', olderThanMs: 0 })).resolves.toBe(1);
      const next = await t.client.listTasks({ queue: 'paged-queue', limit: 10, cursor: tasks[3] }).then(
        (page) => ids(page),
        (error: unknown) => error,
      );
      // Either the rest of the list, or an error saying the cursor is gone; an empty page would
      // tell the caller the listing is complete while three tasks were never shown.
      if (Array.isArray(next)) expect(next).toEqual([tasks[2], tasks[1], tasks[0]]);
      else expect(next).toBeInstanceOf(DurableError);
    });

    it('refuses a bad state, cursor or limit', async () => {
      await expect(t.client.listTasks({ state: 'done' as TaskState })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.listTasks({ state: 'PENDING' as TaskState })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.listTasks({ cursor: 'page-2' })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.listTasks({ limit: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(t.client.listTasks({ limit: -5 })).rejects.toBeInstanceOf(InvalidArgumentError);
    });
  });

  describe('queues', () => {
    it('createQueue is idempotent and listQueues includes created queues and queues used by spawn', async () => {
      await t.client.createQueue('admin-queue');
      await t.client.createQueue('admin-queue');
      await producer.client.spawn('echo', {}, { queue: 'spawned-queue' });
      const queues = await t.client.listQueues();
      expect(queues).toEqual(expect.arrayContaining(['admin-queue', 'spawned-queue', 'default', 'parked']));
      expect(queues.filter((queue) => queue === 'admin-queue')).toHaveLength(1);
      expect(new Set(queues).size).toBe(queues.length);
      const { rows } = await sql.query<{ n: number }>(`select count(*)::int as n from durable.queues where name = 'admin-queue'`);
      expect(rows[0].n).toBe(1);
    });

    it('dropQueue removes the queue with its tasks, their runs and checkpoints, and its events', async () => {
      const dropped: string[] = [];
      for (let i = 0; i < 3; i++) dropped.push((await producer.client.spawn('echo', { i }, { queue: 'drop-queue' })).taskId);
      await producer.client.cancel(dropped[0]);
      await producer.client.emitEvent('drop-event', { x: 1 }, { queue: 'drop-queue' });
      await producer.client.emitEvent('drop-event', { kept: true }, { queue: 'keep-queue' });
      const kept = await producer.client.spawn('echo', {}, { queue: 'keep-queue' });
      const countsBefore = await sql.query(
        `select (select count(*)::int from durable.tasks where queue <> 'drop-queue') as tasks,
                (select count(*)::int from durable.runs where queue <> 'drop-queue') as runs,
                (select count(*)::int from durable.events where queue <> 'drop-queue') as events`,
      );

      await t.client.dropQueue('drop-queue');

      expect(await t.client.listQueues()).not.toContain('drop-queue');
      expect(await t.client.listQueues()).toContain('keep-queue');
      for (const id of dropped) await expect(t.client.getTask(id)).resolves.toBeNull();
      const left = await sql.query(
        `select (select count(*)::int from durable.tasks where queue = 'drop-queue') as tasks,
                (select count(*)::int from durable.runs where queue = 'drop-queue' or task_id = any($1)) as runs,
                (select count(*)::int from durable.events where queue = 'drop-queue') as events,
                (select count(*)::int from durable.queues where name = 'drop-queue') as queues`,
        [dropped],
      );
      expect(left.rows[0]).toEqual({ tasks: 0, runs: 0, events: 0, queues: 0 });
      const countsAfter = await sql.query(
        `select (select count(*)::int from durable.tasks where queue <> 'drop-queue') as tasks,
                (select count(*)::int from durable.runs where queue <> 'drop-queue') as runs,
                (select count(*)::int from durable.events where queue <> 'drop-queue') as events`,
      );
      expect(countsAfter.rows[0]).toEqual(countsBefore.rows[0]);
      expect((await t.client.getTask(kept.taskId))!.state).toBe('pending');
      await expect(t.client.dropQueue('never-existed')).resolves.toBeUndefined();
    });
  });
});

describe('DurableClient.cleanup', () => {
  // Its own database: this block moves the database clock.
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, HANDLERS);
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  const exists = async (taskId: string) => (await t.client.getTask(taskId)) !== null;
  const orphans = async () =>
    (
      await sql.query(
        `select (select count(*)::int from durable.runs r where not exists (select 1 from durable.tasks t where t.id = r.task_id)) as runs,
                (select count(*)::int from durable.checkpoints c where not exists (select 1 from durable.tasks t where t.id = c.task_id)) as checkpoints,
                (select count(*)::int from durable.waits w where not exists (select 1 from durable.tasks t where t.id = w.task_id)
                   or not exists (select 1 from durable.runs r where r.id = w.run_id)) as waits`,
      )
    ).rows[0];

  it('deletes terminal tasks by the time they became terminal, with their rows, per queue and limit', async () => {
    // At t0: a completed task with a checkpoint, a failed one with two runs, a cancelled one on
    // another queue, a pending one (never polled) and a sleeping one waiting for an event.
    const completed = await t.client.spawn(WorkTask, { n: 1 });
    const failed = await t.client.spawn(FlakyTask, {});
    const cancelled = await t.client.spawn('echo', {}, { queue: 'other-queue' });
    await t.client.cancel(cancelled.taskId);
    const pending = await t.client.spawn('echo', {}, { queue: 'other-queue' });
    // Cancelled, then given a new attempt: no longer terminal.
    const revived = await t.client.spawn('echo', {}, { queue: 'other-queue' });
    await t.client.cancel(revived.taskId);
    await t.client.retry(revived.taskId);
    const sleeping = await t.client.spawn(WaiterTask, {});
    // Created now, run two hours later: it becomes terminal only after the clock moved.
    const late = await t.client.spawn(WorkTask, { n: 5 }, { delayMs: 2 * HOUR });

    await expect(t.client.awaitResult(completed.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 2 });
    await expect(t.client.awaitResult(failed.taskId, { timeoutMs: 15_000 })).rejects.toBeInstanceOf(TaskFailedError);
    await eventually(async () => (await t.client.getTask(sleeping.taskId))?.state === 'sleeping', 15_000, 'the waiter to sleep');
    const rowsOf = async (taskId: string) =>
      (
        await sql.query(
          `select (select count(*)::int from durable.runs where task_id = $1) as runs,
                  (select count(*)::int from durable.checkpoints where task_id = $1) as checkpoints,
                  (select count(*)::int from durable.waits where task_id = $1) as waits`,
          [taskId],
        )
      ).rows[0];
    expect(await rowsOf(failed.taskId)).toEqual({ runs: 2, checkpoints: 2, waits: 0 });
    expect(await rowsOf(completed.taskId)).toEqual({ runs: 1, checkpoints: 1, waits: 0 });
    expect(await rowsOf(sleeping.taskId)).toEqual({ runs: 1, checkpoints: 1, waits: 1 });

    // Nothing is an hour old yet.
    await expect(t.client.cleanup({ olderThanMs: HOUR })).resolves.toBe(0);

    await advanceClock(sql, 2 * HOUR + 60_000);
    await expect(t.client.awaitResult(late.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 10 });

    // Only the other queue's terminal task.
    await expect(t.client.cleanup({ olderThanMs: HOUR, queue: 'other-queue' })).resolves.toBe(1);
    expect(await exists(cancelled.taskId)).toBe(false);
    expect(await exists(pending.taskId)).toBe(true);
    expect(await exists(completed.taskId)).toBe(true);
    expect(await exists(failed.taskId)).toBe(true);

    // At most `limit`.
    await expect(t.client.cleanup({ olderThanMs: HOUR, limit: 1 })).resolves.toBe(1);
    expect([await exists(completed.taskId), await exists(failed.taskId)].filter(Boolean)).toHaveLength(1);
    await expect(t.client.cleanup({ olderThanMs: HOUR })).resolves.toBe(1);
    expect(await exists(completed.taskId)).toBe(false);
    expect(await exists(failed.taskId)).toBe(false);

    // Created two hours ago but completed just now: not an hour terminal yet.
    await expect(t.client.cleanup({ olderThanMs: HOUR })).resolves.toBe(0);
    expect(await exists(late.taskId)).toBe(true);
    expect(await orphans()).toEqual({ runs: 0, checkpoints: 0, waits: 0 });
    const { rows } = await sql.query<{ n: number }>(`select count(*)::int as n from durable.runs where task_id = any($1)`, [
      [completed.taskId, failed.taskId, cancelled.taskId],
    ]);
    expect(rows[0].n).toBe(0);

    // olderThanMs 0 takes every terminal task, and never a non-terminal one.
    await expect(t.client.cleanup({ olderThanMs: 0 })).resolves.toBe(1);
    expect(await exists(late.taskId)).toBe(false);
    expect((await t.client.getTask(pending.taskId))!.state).toBe('pending');
    expect((await t.client.getTask(revived.taskId))!.state).toBe('pending');
    expect((await t.client.getTask(sleeping.taskId))!.state).toBe('sleeping');
    expect(await rowsOf(sleeping.taskId)).toEqual({ runs: 1, checkpoints: 1, waits: 1 });
    await expect(t.client.cleanup({ olderThanMs: 0 })).resolves.toBe(0);
    expect(await orphans()).toEqual({ runs: 0, checkpoints: 0, waits: 0 });
  });

  it('frees the idempotency key of a task it removed', async () => {
    const first = await t.client.spawn(WorkTask, { n: 2 }, { idempotencyKey: 'cleanup-key' });
    await t.client.awaitResult(first.taskId, { timeoutMs: 15_000 });
    await expect(t.client.spawn(WorkTask, { n: 2 }, { idempotencyKey: 'cleanup-key' })).resolves.toMatchObject({
      taskId: first.taskId,
      created: false,
    });
    await expect(t.client.cleanup({ olderThanMs: 0 })).resolves.toBe(1);
    const second = await t.client.spawn(WorkTask, { n: 3 }, { idempotencyKey: 'cleanup-key' });
    expect(second.created).toBe(true);
    expect(second.taskId).not.toBe(first.taskId);
    await expect(t.client.awaitResult(second.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 6 });
  });

  it('refuses bad arguments', async () => {
    await expect(t.client.cleanup({ olderThanMs: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.client.cleanup({ olderThanMs: Number.NaN })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.client.cleanup({ olderThanMs: 0, limit: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(t.client.cleanup({ olderThanMs: 0, queue: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});
