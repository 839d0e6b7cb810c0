/**
 * Child tasks against a real Postgres: ctx.spawn (checkpointed in the same transaction as the
 * child: a retried parent never spawns twice), joins that suspend the parent (a worker with
 * concurrency 1 runs parent and children on one queue; a fan-in wakes the parent once), their
 * outcomes (ChildFailedError, ChildCancelledError, TimeoutError), cascades over generations, and
 * refusals that write nothing.
 *
 * "Claimed exactly twice" is the parent run's claim epoch (bumped by every claim of the run).
 */
import type pg from 'pg';
import {
  ChildCancelledError, ChildFailedError, DurableError, DurableTask, NonRetryableError, TimeoutError,
  type DurableTaskHandler, type TaskContext, type TaskHandle,
} from '../../lib/index.js';
import { advanceClock, eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const HOUR = 3_600_000;

interface KidParams {
  value: number;
  fail?: string;
  waitFor?: string;
}

@DurableTask({ name: 'kid', retry: { kind: 'none' } })
class KidTask implements DurableTaskHandler<KidParams, number> {
  async run(params: KidParams, ctx: TaskContext) {
    if (params.waitFor) await ctx.awaitEvent(params.waitFor);
    if (params.fail) throw new NonRetryableError(params.fail);
    return params.value * 2;
  }
}

/** Spawns one child per entry of `kids` and joins them all (or catches and describes the error). */
@DurableTask({ name: 'fan', retry: { kind: 'none' } })
class FanTask implements DurableTaskHandler<{ kids: KidParams[]; catch?: boolean }, unknown> {
  async run(params: { kids: KidParams[]; catch?: boolean }, ctx: TaskContext) {
    const handles: TaskHandle<number>[] = [];
    for (const [i, kid] of params.kids.entries()) handles.push(await ctx.spawn(`kid-${i}`, KidTask, kid));
    if (!params.catch) return ctx.joinAll(handles);
    try {
      return await ctx.joinAll(handles);
    } catch (error) {
      return describeError(error);
    }
  }
}

@DurableTask({ name: 'fan-any', retry: { kind: 'none' } })
class FanAnyTask implements DurableTaskHandler<{ kids: KidParams[] }, unknown> {
  async run(params: { kids: KidParams[] }, ctx: TaskContext) {
    const handles: TaskHandle<number>[] = [];
    for (const [i, kid] of params.kids.entries()) handles.push(await ctx.spawn(`kid-${i}`, 'kid', kid));
    try {
      return await ctx.joinAny(handles);
    } catch (error) {
      return describeError(error);
    }
  }
}

/** Spawns a child (which waits for `event`), fails its first attempt after the spawn, and joins on the second. */
const handlesSeen: TaskHandle[] = [];
const attemptsSeen: number[] = [];
@DurableTask({ name: 'retried-parent', maxAttempts: 3, retry: { kind: 'fixed', delayMs: 10 } })
class RetriedParentTask implements DurableTaskHandler<{ event: string }, number> {
  async run(params: { event: string }, ctx: TaskContext) {
    const handle = await ctx.spawn<number>('kid', KidTask, { value: 21, waitFor: params.event });
    handlesSeen.push(handle);
    attemptsSeen.push(ctx.attempt);
    if (ctx.attempt === 1) throw new Error('fails after spawning');
    return ctx.join(handle);
  }
}

@DurableTask({ name: 'join-timeout', retry: { kind: 'none' } })
class JoinTimeoutTask implements DurableTaskHandler<{ event: string }, unknown> {
  async run(params: { event: string }, ctx: TaskContext) {
    const handle = await ctx.spawn<number>('kid', KidTask, { value: 1, waitFor: params.event });
    try {
      return await ctx.join(handle, { timeoutMs: HOUR });
    } catch (error) {
      return describeError(error);
    }
  }
}

/** Spawns a quick child, waits for an event (the child completes meanwhile), then joins. */
@DurableTask({ name: 'late-join', retry: { kind: 'none' } })
class LateJoinTask implements DurableTaskHandler<{ event: string }, number> {
  async run(params: { event: string }, ctx: TaskContext) {
    const handle = await ctx.spawn<number>('kid', KidTask, { value: 4 });
    await ctx.awaitEvent(params.event);
    return ctx.join(handle);
  }
}

/** depth 0: the grandparent; each level spawns the next and joins it; the last waits for `event`. */
@DurableTask({ name: 'generation', retry: { kind: 'none' } })
class GenerationTask implements DurableTaskHandler<{ depth: number; event: string; then?: 'fail' | 'complete' }, unknown> {
  async run(params: { depth: number; event: string; then?: 'fail' | 'complete' }, ctx: TaskContext): Promise<unknown> {
    if (params.depth === 2) return ctx.awaitEvent(params.event);
    const handle: TaskHandle = await ctx.spawn('next', 'generation', { depth: params.depth + 1, event: params.event });
    if (params.then === 'fail') throw new NonRetryableError('the parent gives up');
    if (params.then === 'complete') return 'done without joining';
    return ctx.join(handle);
  }
}

/** Every refusal, caught: nothing may be written for any of them. */
@DurableTask({ name: 'refusals', retry: { kind: 'none' } })
class RefusalsTask implements DurableTaskHandler<{ stranger: string }, string[]> {
  async run(params: { stranger: string }, ctx: TaskContext) {
    const names: string[] = [];
    const attempt = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
        names.push('no error');
      } catch (error) {
        names.push((error as Error).name);
      }
    };
    await attempt(() => ctx.spawn('bad-delay', KidTask, { value: 1 }, { delayMs: -1 }));
    await attempt(() => ctx.spawn('bad-both', KidTask, { value: 1 }, { delayMs: 1, runAt: new Date() }));
    await attempt(() => ctx.spawn('bad-params', KidTask, { value: 1n } as unknown as KidParams));
    await attempt(() => ctx.spawn('', KidTask, { value: 1 }));
    await attempt(() => ctx.joinAny([]));
    await attempt(() => ctx.join({ taskId: params.stranger, taskName: 'kid', queue: 'default' }));
    await attempt(() => ctx.join({ taskId: 'not-a-uuid', taskName: 'kid', queue: 'default' }));
    names.push(JSON.stringify(await ctx.joinAll([])));
    return names;
  }
}

function describeError(error: unknown) {
  if (error instanceof ChildFailedError) {
    return { error: 'ChildFailedError', durable: error instanceof DurableError, childTaskId: error.childTaskId, childError: error.childError };
  }
  if (error instanceof ChildCancelledError) return { error: 'ChildCancelledError', childTaskId: error.childTaskId };
  if (error instanceof TimeoutError) return { error: 'TimeoutError' };
  throw error;
}

describe('child tasks', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [KidTask, FanTask, FanAnyTask, RetriedParentTask, JoinTimeoutTask, LateJoinTask, GenerationTask, RefusalsTask], {
      worker: { concurrency: 1, pollIntervalMs: 100 },
    });
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  const childrenOf = async (taskId: string) =>
    (await pool.query(`select id, state from durable.tasks where parent_task_id = $1`, [taskId])).rows as { id: string; state: string }[];
  const parentRun = async (taskId: string) =>
    (await pool.query(`select r.attempt, r.claim_epoch from durable.runs r where r.task_id = $1`, [taskId])).rows as { attempt: number; claim_epoch: number }[];
  const stateOf = async (taskId: string) => (await t.client.getTask(taskId))?.state;
  const until = (taskId: string, state: string, timeoutMs = 20_000) =>
    eventually(async () => (await stateOf(taskId)) === state, timeoutMs, `task ${taskId} ${state}`);

  it('runs a parent and its children on one queue with concurrency 1, and joinAll suspends once', async () => {
    const { taskId } = await t.client.spawn(FanTask, { kids: [{ value: 1 }, { value: 2 }, { value: 3 }] });
    expect(await t.client.awaitResult(taskId, { timeoutMs: 20_000 })).toEqual([2, 4, 6]);
    expect(await parentRun(taskId)).toEqual([{ attempt: 1, claim_epoch: 2 }]);
    const kids = await t.client.listTasks({ parentTaskId: taskId });
    expect(kids).toHaveLength(3);
    expect(kids.every((kid) => kid.parentTaskId === taskId && kid.state === 'completed')).toBe(true);
    expect((await t.client.getTask(taskId))?.parentTaskId).toBeNull();
  });

  it('wakes the parent once for a fan-in of 200 children: one attempt, claimed twice (start and resume)', async () => {
    const kids = Array.from({ length: 200 }, (_, i) => ({ value: i }));
    const { taskId } = await t.client.spawn(FanTask, { kids });
    expect(await t.client.awaitResult(taskId, { timeoutMs: 60_000 })).toEqual(kids.map((kid) => kid.value * 2));
    expect(await parentRun(taskId)).toEqual([{ attempt: 1, claim_epoch: 2 }]);
    expect(await childrenOf(taskId)).toHaveLength(200);
  }, 90_000);

  it('a parent retried after spawning gets the same handle and never spawns a second child', async () => {
    handlesSeen.length = 0;
    attemptsSeen.length = 0;
    const event = `retried-${Date.now()}`;
    const { taskId } = await t.client.spawn(RetriedParentTask, { event });
    await eventually(async () => {
      const task = await t.client.getTask(taskId);
      return task?.attempts === 2 && task.waitingFor?.reason === 'children';
    }, 20_000, 'attempt 2 to wait for its child');
    await t.client.emitEvent(event);
    expect(await t.client.awaitResult(taskId, { timeoutMs: 20_000 })).toBe(42);
    expect((await t.client.getTask(taskId))?.attempts).toBe(2);
    expect(await childrenOf(taskId)).toHaveLength(1);
    // Attempt 1; attempt 2 until its join suspends it; attempt 2 again when the child has ended
    // (a resume runs the handler again, its spawn replayed from the checkpoint).
    expect(attemptsSeen).toEqual([1, 2, 2]);
    const child = { taskId: (await childrenOf(taskId))[0].id, taskName: 'kid', queue: 'default' };
    for (const handle of handlesSeen) expect(handle).toEqual(child);
  });

  it('joinAll with a failed child fails only after all children are terminal, for the first failed handle', async () => {
    const event = `slow-${Date.now()}`;
    const { taskId } = await t.client.spawn(FanTask, {
      kids: [{ value: 1, waitFor: event }, { value: 2, fail: 'second breaks' }, { value: 3, fail: 'third breaks' }, { value: 4 }],
    });
    const kids = await eventually(async () => {
      const rows = await t.client.listTasks({ parentTaskId: taskId });
      return rows.length === 4 && rows.filter((kid) => ['failed', 'completed'].includes(kid.state)).length === 3 && rows;
    }, 20_000, 'the three quick children to end');
    await eventually(async () => (await stateOf(taskId)) === 'sleeping', 10_000, 'the parent to sleep');
    expect(await stateOf(taskId)).toBe('sleeping'); // the slow child still waits
    await t.client.emitEvent(event);
    await until(taskId, 'failed');
    const parent = await t.client.getTask(taskId);
    const second = (await pool.query(`select id from durable.tasks where parent_task_id = $1 and params->>'value' = '2'`, [taskId])).rows[0].id;
    expect(parent?.error).toMatchObject({ name: 'ChildFailedError', message: `child task ${second} failed: NonRetryableError: second breaks` });
    expect(kids.every((kid) => kid.parentTaskId === taskId)).toBe(true);
    const slow = (await pool.query(`select finished_at from durable.tasks where parent_task_id = $1 and params->>'value' = '1'`, [taskId])).rows[0];
    const finished = (await pool.query(`select finished_at from durable.tasks where id = $1`, [taskId])).rows[0];
    expect(finished.finished_at.getTime()).toBeGreaterThanOrEqual(slow.finished_at.getTime());
    expect(await parentRun(taskId)).toEqual([{ attempt: 1, claim_epoch: 2 }]);
  });

  it('a caught ChildFailedError is a DurableError with the child id and error', async () => {
    const { taskId } = await t.client.spawn(FanTask, { kids: [{ value: 1 }, { value: 2, fail: 'no' }], catch: true });
    const result = await t.client.awaitResult<Record<string, unknown>>(taskId, { timeoutMs: 20_000 });
    const failed = (await childrenOf(taskId)).find((kid) => kid.state === 'failed')!;
    expect(result).toEqual({ error: 'ChildFailedError', durable: true, childTaskId: failed.id, childError: { name: 'NonRetryableError', message: 'no' } });
  });

  it('joinAny returns the first child to complete, and throws only when every child failed or was cancelled', async () => {
    const event = `never-${Date.now()}`;
    const first = await t.client.spawn(FanAnyTask, { kids: [{ value: 1, waitFor: event }, { value: 5 }] });
    expect(await t.client.awaitResult(first.taskId, { timeoutMs: 20_000 })).toEqual({ index: 1, result: 10 });
    expect(await parentRun(first.taskId)).toEqual([{ attempt: 1, claim_epoch: 2 }]);

    const none = await t.client.spawn(FanAnyTask, { kids: [{ value: 1, waitFor: event }, { value: 2, fail: 'b' }] });
    const kids = await eventually(async () => {
      const rows = await childrenOf(none.taskId);
      return rows.length === 2 && rows.some((kid) => kid.state === 'failed') && rows;
    }, 20_000, 'the failing child');
    await eventually(async () => (await stateOf(none.taskId)) === 'sleeping', 10_000, 'the parent to wait');
    const waiting = kids.find((kid) => kid.state !== 'failed')!;
    await t.client.cancel(waiting.id);
    // Every child failed or was cancelled: the error of the first handle in the list (the cancelled one).
    expect(await t.client.awaitResult(none.taskId, { timeoutMs: 20_000 })).toEqual({ error: 'ChildCancelledError', childTaskId: waiting.id });
  });

  it('join({ timeoutMs }) throws TimeoutError once the deadline passes (test clock)', async () => {
    const { taskId } = await t.client.spawn(JoinTimeoutTask, { event: `late-${Date.now()}` });
    await until(taskId, 'sleeping');
    await eventually(async () => (await childrenOf(taskId)).some((kid) => kid.state === 'sleeping'), 10_000, 'the child to wait');
    await advanceClock(pool, 2 * HOUR);
    expect(await t.client.awaitResult(taskId, { timeoutMs: 20_000 })).toEqual({ error: 'TimeoutError' });
  });

  it('a child that completed before the join is returned at once, without suspending', async () => {
    const event = `go-${Date.now()}`;
    const { taskId } = await t.client.spawn(LateJoinTask, { event });
    await eventually(async () => (await childrenOf(taskId)).some((kid) => kid.state === 'completed'), 20_000, 'the child to complete');
    await until(taskId, 'sleeping');
    await t.client.emitEvent(event);
    expect(await t.client.awaitResult(taskId, { timeoutMs: 20_000 })).toBe(8);
    // Claimed at its start and after the event: the join did not suspend again.
    expect(await parentRun(taskId)).toEqual([{ attempt: 1, claim_epoch: 2 }]);
  });

  describe('cascades', () => {
    const family = async (root: string) => {
      const [child] = await childrenOf(root);
      const [grandchild] = child ? await childrenOf(child.id) : [];
      return { child, grandchild };
    };
    const startFamily = async (then?: 'fail' | 'complete') => {
      const { taskId } = await t.client.spawn(GenerationTask, { depth: 0, event: `never-${Date.now()}-${Math.random()}`, then });
      const { child, grandchild } = await eventually(async () => {
        const f = await family(taskId);
        return f.grandchild?.state === 'sleeping' && f;
      }, 20_000, 'three generations');
      return { root: taskId, child: child!.id, grandchild: grandchild!.id };
    };

    it('cancelling the grandparent cancels every descendant', async () => {
      const { root, child, grandchild } = await startFamily();
      await until(root, 'sleeping');
      await t.client.cancel(root);
      expect([await stateOf(root), await stateOf(child), await stateOf(grandchild)]).toEqual(['cancelled', 'cancelled', 'cancelled']);
      expect((await t.client.getTask(grandchild))?.error).toMatchObject({ name: 'TaskCancelled', parentTaskId: child });
    });

    it('a parent that fails for good cancels its descendants', async () => {
      const { taskId } = await t.client.spawn(GenerationTask, { depth: 1, event: `never-${Date.now()}`, then: 'fail' });
      await until(taskId, 'failed');
      const [kid] = await childrenOf(taskId);
      await until(kid.id, 'cancelled');
    });

    it('a parent that completes leaves its running child alone', async () => {
      const { taskId } = await t.client.spawn(GenerationTask, { depth: 1, event: `never-${Date.now()}`, then: 'complete' });
      expect(await t.client.awaitResult(taskId, { timeoutMs: 20_000 })).toBe('done without joining');
      const [kid] = await childrenOf(taskId);
      await until(kid.id, 'sleeping');
      expect(await stateOf(kid.id)).toBe('sleeping');
    });

    it('a cancelled child is ChildCancelledError in its parent', async () => {
      const event = `never-${Date.now()}`;
      const { taskId } = await t.client.spawn(FanTask, { kids: [{ value: 1, waitFor: event }], catch: true });
      const [kid] = await eventually(async () => {
        const rows = await childrenOf(taskId);
        return rows[0]?.state === 'sleeping' && rows;
      }, 20_000, 'the child to wait');
      await until(taskId, 'sleeping');
      await t.client.cancel(kid.id);
      expect(await t.client.awaitResult(taskId, { timeoutMs: 20_000 })).toEqual({ error: 'ChildCancelledError', childTaskId: kid.id });
    });
  });

  it('refuses bad spawns and joins and writes nothing for them', async () => {
    const stranger = await t.client.spawn('kid', { value: 0 }, { queue: 'elsewhere' });
    const before = (await pool.query(`select count(*)::int as n from durable.tasks`)).rows[0].n;
    const { taskId } = await t.client.spawn(RefusalsTask, { stranger: stranger.taskId });
    expect(await t.client.awaitResult(taskId, { timeoutMs: 20_000 })).toEqual([
      'InvalidArgumentError', 'InvalidArgumentError', 'SerializationError', 'InvalidArgumentError',
      'InvalidArgumentError', 'InvalidArgumentError', 'InvalidArgumentError', '[]',
    ]);
    expect((await pool.query(`select count(*)::int as n from durable.tasks`)).rows[0].n).toBe(before + 1);
    expect(await childrenOf(taskId)).toEqual([]);
    expect((await pool.query(`select name from durable.checkpoints where task_id = $1`, [taskId])).rows).toEqual([]);
    expect(await parentRun(taskId)).toEqual([{ attempt: 1, claim_epoch: 1 }]);
  });
});
