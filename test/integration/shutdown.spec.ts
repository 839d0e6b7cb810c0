/**
 * What a stopping worker leaves behind (issue 13, items 2 and 6): after `shutdownTimeoutMs` the
 * handlers still running are stopped (their next ctx call throws instead of running a side
 * effect against a closed pool); a run whose handler is not inside a step or a ctx call is put
 * back without using an attempt; and a claim whose outcome is unknown strands nothing: the
 * worker puts back the runs it holds in the database but is not executing, before it claims again.
 */
import type pg from 'pg';
import { DataSource } from 'typeorm';
import { DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const gates = new Map<string, () => void>();
function gate(key: string): Promise<void> {
  return new Promise((resolve) => gates.set(key, resolve));
}
const sideEffects = new Map<string, number>();
const caught = new Map<string, string>();

/** Inside a step's function when the worker gives up on it; swallows what the step throws. */
@DurableTask({ name: 'in-step-at-stop' })
class InStepAtStopTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    try {
      await ctx.step('long', () => gate(`long:${ctx.taskId}`).then(() => 'long'));
    } catch (error) {
      caught.set(ctx.taskId, (error as Error).name);
    }
    try {
      await ctx.step('effect', () => {
        sideEffects.set(ctx.taskId, (sideEffects.get(ctx.taskId) ?? 0) + 1);
        return 'done';
      });
    } catch {
      // swallowed on purpose
    }
    return 'finished';
  }
}

/** Waits before its first step (or between steps) when the worker stops. */
@DurableTask({ name: 'idle-at-stop' })
class IdleAtStopTask implements DurableTaskHandler<{ stepFirst: boolean }, { attempt: number }> {
  async run(params: { stepFirst: boolean }, ctx: TaskContext) {
    if (params.stepFirst) await ctx.step('first', () => 'first');
    if (!gates.has(`idle:${ctx.taskId}`)) await gate(`idle:${ctx.taskId}`);
    await ctx.step('work', () => {
      sideEffects.set(ctx.taskId, (sideEffects.get(ctx.taskId) ?? 0) + 1);
      return 'work';
    });
    return { attempt: ctx.attempt };
  }
}

@DurableTask({ name: 'quick' })
class QuickTask implements DurableTaskHandler<unknown, number> {
  async run(_params: unknown, ctx: TaskContext) {
    return ctx.attempt;
  }
}

async function runsOf(sql: pg.Pool, taskId: string) {
  const { rows } = await sql.query(`select attempt, state, worker_id, error from durable.runs where task_id = $1 order by attempt`, [taskId]);
  return rows as { attempt: number; state: string; worker_id: string | null; error: unknown }[];
}

describe('graceful stop after shutdownTimeoutMs', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  const apps: DurableTestApp[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await sql?.end();
    await db?.drop();
  });

  it('stops a handler still inside a step: its next ctx call throws instead of running its function', async () => {
    const t = await startApp(db.url, [InStepAtStopTask], { worker: { shutdownTimeoutMs: 200, leaseMs: 60_000, workerId: 'stopper-1' } });
    const { taskId } = await t.client.spawn(InStepAtStopTask, {});
    await eventually(() => gates.get(`long:${taskId}`), 10_000, 'the handler to be inside its step');
    await t.close();

    // The step's function ends after the pool closed; the handler goes on to its next step.
    gates.get(`long:${taskId}`)!();
    await sleep(300);
    expect(caught.get(taskId)).toBe('DurableControlSignal');
    expect(sideEffects.get(taskId)).toBeUndefined();
    // The cost: the run stays with its lease (it expires as a failed attempt, LeaseExpired).
    expect(await runsOf(sql, taskId)).toEqual([{ attempt: 1, state: 'running', worker_id: 'stopper-1', error: null }]);
  });

  it.each([
    ['before its first step', false],
    ['between two steps', true],
  ])('puts back, without using an attempt, a run whose handler is %s', async (_label, stepFirst) => {
    const t = await startApp(db.url, [IdleAtStopTask], { worker: { shutdownTimeoutMs: 200, leaseMs: 60_000, workerId: 'stopper-2' } });
    const { taskId } = await t.client.spawn(IdleAtStopTask, { stepFirst });
    await eventually(() => gates.get(`idle:${taskId}`), 10_000, 'the handler to wait');
    await t.close();
    expect(await runsOf(sql, taskId)).toEqual([{ attempt: 1, state: 'pending', worker_id: null, error: null }]);
    // The stopped handler goes on: its next ctx call throws, and nothing runs.
    gates.get(`idle:${taskId}`)!();
    await sleep(200);
    expect(sideEffects.get(taskId)).toBeUndefined();

    // Another worker takes it over at once, as attempt 1.
    const next = await startApp(db.url, [IdleAtStopTask], { worker: { leaseMs: 60_000, workerId: 'stopper-3' } });
    apps.push(next);
    await expect(next.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toEqual({ attempt: 1 });
    expect(sideEffects.get(taskId)).toBe(1);
    expect((await runsOf(sql, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'completed']]);
    await next.close();
    apps.pop();
  });
});

describe('a claim whose outcome is unknown', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let dataSource: DataSource;
  let t: DurableTestApp;
  let armed = false;
  let lostClaims = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    dataSource = new DataSource({ type: 'postgres', url: db.url });
    await dataSource.initialize();
    // The claim commits, but its answer never comes back (as after a client-side timeout).
    const pool = (dataSource.driver as unknown as { master: pg.Pool }).master;
    const query = pool.query.bind(pool) as (text: unknown, values?: unknown[]) => Promise<pg.QueryResult>;
    (pool as unknown as { query: unknown }).query = async (text: unknown, values?: unknown[]) => {
      const result = await query(text, values);
      // pg takes (text, values) or a config object ({ text, values, ... }).
      const sqlText = typeof text === 'string' ? text : (text as { text?: string })?.text;
      if (armed && sqlText?.includes('claim_tasks(') && result.rows.some((row: { run_id: unknown }) => row.run_id !== null)) {
        armed = false;
        lostClaims += 1;
        throw Object.assign(new Error('the claim was sent but no answer came back'), { name: 'OutcomeUnknownError' });
      }
      return result;
    };
    t = await startApp(db.url, [QuickTask], { dataSource, worker: { leaseMs: 60_000, workerId: 'unknown-outcome' } });
  });
  afterAll(async () => {
    await t?.close();
    await dataSource?.destroy();
    await sql?.end();
    await db?.drop();
  });

  it('strands no run: the runs it claimed are put back without using an attempt, long before their lease', async () => {
    armed = true;
    const spawned = await Promise.all([1, 2, 3].map(() => t.client.spawn(QuickTask, {})));
    await eventually(() => lostClaims === 1, 10_000, 'a claim to be lost');
    for (const { taskId } of spawned) {
      await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe(1);
      expect((await runsOf(sql, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'completed']]);
    }
  });
});
