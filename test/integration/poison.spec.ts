/**
 * One bad task cannot stop the others (issue 13, item 4): the sweeps of `claim_tasks` handle
 * each task on its own (a task whose sweep fails is marked failed and the others go on), the
 * retry back-off is total (a stored factor of 0 no longer throws), and a task's checkpoints are
 * capped in total (`maxCheckpointBytesPerTask`), so that the claim's aggregate of them cannot
 * grow past what Postgres and V8 can hold.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import {
  DurableTask, DurableWorkerMonitor, InvalidArgumentError, SerializationError, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { resolveOptions } from '../../lib/engine/options.js';
import { eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

@DurableTask({ name: 'healthy' })
class HealthyTask implements DurableTaskHandler<{ n: number }, number> {
  async run(params: { n: number }, ctx: TaskContext) {
    return ctx.step('double', () => params.n * 2);
  }
}

@DurableTask({ name: 'poison' })
class PoisonTask implements DurableTaskHandler<unknown, number> {
  async run(_params: unknown, ctx: TaskContext) {
    return ctx.attempt;
  }
}

/** A task of the given retry strategy, running on a worker that died: its lease expired a minute ago. */
async function insertExpiredTask(sql: pg.Pool, id: string, retry: unknown, extraRun = false): Promise<void> {
  const runId = randomUUID();
  await sql.query(`
    insert into durable.queues (name, created_at) values ('default', now()) on conflict do nothing;`);
  await sql.query(
    `insert into durable.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry, run_id, created_at, updated_at, first_started_at)
     values ($1, 'default', 'poison', '{}', '{}', 'running', 1, 3, $2::jsonb, $3, now(), now(), now())`,
    [id, JSON.stringify(retry), runId],
  );
  await sql.query(
    `insert into durable.runs (id, task_id, queue, attempt, state, available_at, worker_id, lease_expires_at, created_at, started_at)
     values ($1, $2, 'default', 1, 'running', now(), 'dead-worker', durable.now() - interval '1 minute', now(), now())`,
    [runId, id],
  );
  // A corrupt row: a run of the next attempt exists already, so failing this one cannot create it.
  if (extraRun) {
    await sql.query(
      `insert into durable.runs (id, task_id, queue, attempt, state, available_at, created_at)
       values ($1, $2, 'default', 2, 'failed', now(), now())`,
      [randomUUID(), id],
    );
  }
}

describe('a poison task among healthy ones', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [HealthyTask, PoisonTask], { worker: { concurrency: 4 } });
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  it('does not stop the claims: the healthy tasks complete, the poison ones are retried or failed with a clear error', async () => {
    const zeroFactor = '00000000-0000-4000-8000-0000000000f1';
    const corrupt = '00000000-0000-4000-8000-0000000000f2';
    await insertExpiredTask(sql, zeroFactor, { kind: 'exponential', baseDelayMs: 1000, factor: 0 });
    await insertExpiredTask(sql, corrupt, { kind: 'fixed', delayMs: 10 }, true);

    const monitor = t.app.get(DurableWorkerMonitor);
    const errors = new Set<string>();
    const watch = setInterval(() => {
      const error = monitor.status().lastError;
      if (error) errors.add(error.message);
    }, 5);
    try {
      const healthy = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => t.client.spawn(HealthyTask, { n })));
      for (const [i, { taskId }] of healthy.entries()) {
        await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBe((i + 1) * 2);
      }
      // Factor 0 is taken as 1: the next attempt waits baseDelayMs and runs.
      await expect(t.client.awaitResult(zeroFactor, { timeoutMs: 15_000 })).resolves.toBe(2);
      const failed = await eventually(async () => {
        const task = await t.client.getTask(corrupt);
        return task?.state === 'failed' ? task : undefined;
      }, 10_000, 'the corrupt task to be failed');
      expect(failed.error).toMatchObject({ name: 'SweepFailed' });
      expect(failed.error!.message).toMatch(/could not fail the expired run .* duplicate key/);
      const { rows } = await sql.query(`select attempt, state from durable.runs where task_id = $1 order by attempt`, [corrupt]);
      expect(rows).toEqual([{ attempt: 1, state: 'failed' }, { attempt: 2, state: 'failed' }]);
    } finally {
      clearInterval(watch);
    }
    expect([...errors]).toEqual([]);
  });

  it('the back-off is defined for every stored strategy', async () => {
    const { rows } = await sql.query(`
      select durable._backoff(1000, 0, 3) as zero_factor, durable._backoff(1000, -2, 2) as negative_factor,
        durable._backoff(0, 2, 5) as zero_base, durable._backoff(-5, 2, 5) as negative_base,
        durable._backoff('NaN', 2, 2) as nan_base, durable._backoff(1000, 'NaN', 2) as nan_factor,
        durable._backoff(1000, 2, 3) as normal, durable._backoff(1000, 2, 100000) as huge`);
    expect(rows[0]).toEqual({
      zero_factor: 1000, negative_factor: 1000, zero_base: 0, negative_base: 0, nan_base: 0, nan_factor: 1000,
      normal: 4000, huge: 3.15e12,
    });
  });
});

@DurableTask({ name: 'hoarder', maxAttempts: 3 })
class HoarderTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    await ctx.step('one', () => 'x'.repeat(400));
    // A second execution: it counts on from the bytes its claim read back.
    await ctx.sleepFor('pause', 1);
    for (const name of ['two', 'three']) await ctx.step(name, () => 'x'.repeat(400));
    return 'done';
  }
}

describe('maxCheckpointBytesPerTask', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [HoarderTask], { maxCheckpointBytesPerTask: 1000 });
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  it('refuses a checkpoint that would take a task over the cap: the task fails with a SerializationError saying what to do', async () => {
    const { taskId } = await t.client.spawn(HoarderTask, {});
    const failed = await eventually(async () => {
      const task = await t.client.getTask(taskId);
      return task?.state === 'failed' ? task : undefined;
    }, 15_000, 'the hoarder to fail');
    expect(failed.attempts).toBe(1);
    expect(failed.error).toMatchObject({ name: 'SerializationError' });
    expect(failed.error!.message).toMatch(/step "three".*maxCheckpointBytesPerTask \(1000\).*reference/);
    const { rows } = await sql.query(`select name from durable.checkpoints where task_id = $1 order by created_at, name`, [taskId]);
    expect(rows.map((row) => row.name).sort()).toEqual(['sleep:pause', 'step:one', 'step:two']);
  });

  it('is an option with a default of 256 MiB, checked at startup', () => {
    const worker = resolveOptions({ databaseUrl: 'postgres://x@localhost/db' }).worker;
    expect(worker && worker.maxCheckpointBytesPerTask).toBe(256 * 1024 * 1024);
    for (const bad of [0, -1, 1.5, Number.NaN, '100' as unknown as number]) {
      expect(() => resolveOptions({ databaseUrl: 'postgres://x@localhost/db', maxCheckpointBytesPerTask: bad })).toThrow(InvalidArgumentError);
    }
    expect(SerializationError).toBeDefined();
  });
});
