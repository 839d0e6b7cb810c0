/**
 * Execution fencing (issue 13, items 1 and 5): a write is accepted only for the execution that
 * sent it, identified by the run's claim epoch, not only by run id, worker id and lease. A
 * suspended execution's write that arrives after the run was claimed again, by the same worker,
 * is refused; a checkpoint once committed is never replaced (first writer wins); and a
 * cancellation announced for one run never stops another run of the same task.
 */
import type pg from 'pg';
import { DataSource } from 'typeorm';
import { DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

// ---- item 1 --------------------------------------------------------------------------------------

const forkedRuns = new Map<string, number>();
/** Per task, the value of step 'a' each execution saw, in order. */
const forkedSeen = new Map<string, string[]>();
const secondExecutionGate = deferred();

@DurableTask({ name: 'forked' })
class ForkedTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    const n = (forkedRuns.get(ctx.taskId) ?? 0) + 1;
    forkedRuns.set(ctx.taskId, n);
    // The first execution suspends in the sleep while the step's checkpoint is on its way.
    const [a] = await Promise.all([ctx.step('a', () => `from-execution-${n}`), ctx.sleepFor('s', 50)]);
    forkedSeen.set(ctx.taskId, [...(forkedSeen.get(ctx.taskId) ?? []), a]);
    if (n === 2) await secondExecutionGate.promise;
    await ctx.sleepFor('s2', 50);
    return a;
  }
}

/** A pool whose `write_batch` statements the test can hold back, as a slow network would. */
function holdWrites(pool: pg.Pool) {
  const query = pool.query.bind(pool) as (text: unknown, values?: unknown[]) => Promise<pg.QueryResult>;
  const state = {
    /** Holds the first write_batch whose operations match, until `release()`. */
    match: undefined as ((ops: string) => boolean) | undefined,
    held: deferred(),
    heldSent: false,
    result: undefined as unknown,
  };
  (pool as unknown as { query: unknown }).query = (text: unknown, values?: unknown[]) => {
    // pg takes (text, values) or a config object ({ text, values, ... }).
    const config = typeof text === 'string' ? { text, values } : (text as { text?: string; values?: unknown[] });
    if (config?.text?.includes('write_batch(') && state.match?.(String(config.values?.[1]))) {
      state.match = undefined;
      state.heldSent = true;
      return state.held.promise.then(() => query(text, values)).then((result) => {
        state.result = result.rows;
        return result;
      });
    }
    return query(text, values);
  };
  return state;
}

describe('claim epoch: a suspended execution\'s late write', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let dataSource: DataSource;
  let t: DurableTestApp;
  let hold: ReturnType<typeof holdWrites>;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    dataSource = new DataSource({ type: 'postgres', url: db.url });
    await dataSource.initialize();
    hold = holdWrites((dataSource.driver as unknown as { master: pg.Pool }).master);
    t = await startApp(db.url, [ForkedTask], { dataSource, worker: { workerId: 'same-worker', leaseMs: 60_000 } });
  });
  afterAll(async () => {
    await t?.close();
    await dataSource?.destroy();
    await sql?.end();
    await db?.drop();
  });

  it('is refused once the same worker claimed the run again; the checkpoint the next execution returned stays', async () => {
    hold.match = (ops) => ops.includes('"name":"step:a"');
    const { taskId } = await t.client.spawn(ForkedTask, {});

    // Execution 1 suspended with its write of step 'a' held back; execution 2 (same run, same
    // worker id) computed step 'a' itself, committed it, and is running.
    await eventually(() => (forkedSeen.get(taskId)?.length ?? 0) >= 1, 15_000, 'the second execution to pass step a');
    expect(hold.heldSent).toBe(true);
    expect(forkedSeen.get(taskId)).toEqual(['from-execution-2']);
    const stored = async () => (await sql.query(`select value from durable.checkpoints where task_id = $1 and name = 'step:a'`, [taskId])).rows;
    expect(await stored()).toEqual([{ value: 'from-execution-2' }]);
    const { rows: [run] } = await sql.query(`select state, worker_id from durable.runs where task_id = $1`, [taskId]);
    expect(run).toEqual({ state: 'running', worker_id: 'same-worker' });

    // Execution 1's write arrives now: refused, and the checkpoint keeps execution 2's value.
    hold.held.resolve();
    await eventually(() => hold.result !== undefined, 10_000, 'the late write to be answered');
    expect(hold.result).toEqual([{ i: 1, outcome: 'lost' }]);
    expect(await stored()).toEqual([{ value: 'from-execution-2' }]);

    // Execution 3 replays what execution 2 returned to its code.
    secondExecutionGate.resolve();
    await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBe('from-execution-2');
    expect(forkedSeen.get(taskId)).toEqual(['from-execution-2', 'from-execution-2']);
    expect(forkedRuns.get(taskId)).toBe(3);
    const { rows: [epoch] } = await sql.query(`select claim_epoch from durable.runs where task_id = $1`, [taskId]);
    expect(epoch.claim_epoch).toBe(3);
  });
});

// ---- item 5 --------------------------------------------------------------------------------------

const cancelGates = new Map<string, Deferred>();
const cancelExecutions = new Map<string, number>();

@DurableTask({ name: 'gated', maxAttempts: 1 })
class GatedTask implements DurableTaskHandler<unknown, number> {
  async run(_params: unknown, ctx: TaskContext) {
    await ctx.step('before', () => 'before');
    const gate = deferred();
    cancelGates.set(`${ctx.taskId}:${ctx.attempt}`, gate);
    cancelExecutions.set(ctx.taskId, (cancelExecutions.get(ctx.taskId) ?? 0) + 1);
    await gate.promise;
    await ctx.step(`after-${ctx.attempt}`, () => 'after');
    return ctx.attempt;
  }
}

describe('cancel notifications are keyed by run', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [GatedTask], { worker: { leaseMs: 60_000 } });
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  it('a late cancel notification for a task retried since does not stop its new run', async () => {
    const { taskId, runId } = await t.client.spawn(GatedTask, {});
    await eventually(() => cancelGates.get(`${taskId}:1`), 10_000, 'attempt 1 at its gate');

    // Cancel, and keep what the cancel announced.
    const listener = await sql.connect();
    const announced: string[] = [];
    listener.on('notification', (message) => {
      if (message.channel === 'durable_cancel') announced.push(message.payload ?? '');
    });
    try {
      await listener.query('listen durable_cancel');
      await t.client.cancel(taskId);
      await eventually(() => announced.length > 0, 5_000, 'the cancel notification');
    } finally {
      await listener.query('unlisten durable_cancel');
      listener.release();
    }
    cancelGates.get(`${taskId}:1`)!.resolve();

    // Retried at once: attempt 2 runs on the same worker.
    await t.client.retry(taskId);
    await eventually(() => cancelGates.get(`${taskId}:2`), 10_000, 'attempt 2 at its gate');

    // The cancel's notification, delivered late (a slow LISTEN connection), reaches the worker now.
    await sql.query(`select pg_notify('durable_cancel', $1)`, [announced[0]]);
    await sleep(300);
    cancelGates.get(`${taskId}:2`)!.resolve();
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe(2);
    expect(cancelExecutions.get(taskId)).toBe(2);
    // What a cancel announces is the run it stopped.
    expect(announced).toEqual([runId]);
  });
});
