/**
 * Leases: claiming sets one, checkpoints and heartbeats renew it, an expired one is a failed
 * attempt (`LeaseExpired`) that another worker takes over, and the worker that lost it is
 * fenced off by the database. The expired-lease and cancellation-policy sweeps done by
 * `claim_tasks` are bounded by its limit.
 */
import type pg from 'pg';
import { DurableTask, InvalidArgumentError, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { RemoteControl } from '../fixtures/leases-remote-control.js';
import { advanceClock, eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const remote = new RemoteControl();

@DurableTask({ name: 'remote' })
class RemoteTask implements DurableTaskHandler<unknown, unknown> {
  run(_params: unknown, ctx: TaskContext): Promise<unknown> {
    return remote.serve(ctx);
  }
}

let longStepRuns = 0;

@DurableTask({ name: 'heartbeating' })
class HeartbeatingTask implements DurableTaskHandler<{ totalMs: number; everyMs: number }, { beats: number; attempt: number }> {
  async run(params: { totalMs: number; everyMs: number }, ctx: TaskContext) {
    const beats = await ctx.step('long', async () => {
      longStepRuns += 1;
      let count = 0;
      const end = Date.now() + params.totalMs;
      while (Date.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, params.everyMs));
        await ctx.heartbeat();
        count += 1;
      }
      return count;
    });
    return { beats, attempt: ctx.attempt };
  }
}

interface RunRow {
  id: string;
  attempt: number;
  state: string;
  worker_id: string | null;
  error: Record<string, unknown> | null;
  lease_expires_at: Date | null;
  started_at: Date | null;
}

async function runsOf(pool: pg.Pool, taskId: string): Promise<RunRow[]> {
  const { rows } = await pool.query<RunRow>(
    `select id, attempt, state, worker_id, error, lease_expires_at, started_at
     from durable.runs where task_id = $1 order by attempt`,
    [taskId],
  );
  return rows;
}

async function taskRow(pool: pg.Pool, taskId: string) {
  const { rows } = await pool.query(`select state, attempts, result, error from durable.tasks where id = $1`, [taskId]);
  return rows[0] as { state: string; attempts: number; result: unknown; error: Record<string, unknown> | null };
}

async function dbNow(pool: pg.Pool): Promise<Date> {
  const { rows } = await pool.query<{ now: Date }>('select durable.now() as now');
  return rows[0]!.now;
}

/** The run's lease, and how far it lies after the claim (started_at), computed by Postgres to the microsecond. */
async function leaseRow(pool: pg.Pool, runId: string) {
  const { rows } = await pool.query(
    `select lease_expires_at, lease_expires_at::text as lease_text,
       (extract(epoch from lease_expires_at - started_at) * 1000)::float8 as since_claim_ms
     from durable.runs where id = $1`,
    [runId],
  );
  return rows[0] as { lease_expires_at: Date; lease_text: string; since_claim_ms: number };
}

describe('lease column: claim, checkpoint, heartbeat', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let t: DurableTestApp;
  const leaseMs = 30_000;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [RemoteTask], { worker: { leaseMs, workerId: 'lease-w' } });
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('claim sets lease_expires_at = claim time + leaseMs; a checkpoint (at most once a second) and a heartbeat extend it', async () => {
    const { taskId, runId } = await t.client.spawn('remote', {});
    const exec = await remote.execution(taskId);

    const [claimed] = await runsOf(pool, taskId);
    expect(claimed).toMatchObject({ id: runId, attempt: 1, state: 'running', worker_id: 'lease-w' });
    // started_at is the claim time (same transaction clock as the lease).
    expect((await leaseRow(pool, runId)).since_claim_ms).toBe(leaseMs);
    const leaseAtClaim = claimed!.lease_expires_at!;

    // A checkpoint 10 s (database clock) later renews the lease from the checkpoint's time.
    await advanceClock(pool, 10_000);
    await exec.call((ctx) => ctx.step('s1', () => 'v1'));
    const { rows: cp } = await pool.query(
      `select (extract(epoch from r.lease_expires_at - c.created_at) * 1000)::float8 as ms,
         (extract(epoch from r.lease_expires_at - $2::timestamptz) * 1000)::float8 as gained_ms
       from durable.checkpoints c join durable.runs r on r.task_id = c.task_id
       where c.task_id = $1 and c.name = 'step:s1' and r.id = $3`,
      [taskId, leaseAtClaim, runId],
    );
    expect(cp).toHaveLength(1);
    expect(cp[0].ms).toBe(leaseMs);
    expect(cp[0].gained_ms).toBeGreaterThanOrEqual(10_000);
    const leaseAfterCheckpoint = (await leaseRow(pool, runId)).lease_expires_at;

    // A checkpoint less than min(leaseMs / 10, 1 s) after the last renewal leaves the lease as it
    // is (no write of the run per step); a later one renews it from its own time again.
    await advanceClock(pool, 500);
    await exec.call((ctx) => ctx.step('s2', () => 'v2'));
    expect((await leaseRow(pool, runId)).lease_expires_at).toEqual(leaseAfterCheckpoint);
    await advanceClock(pool, 1_000);
    await exec.call((ctx) => ctx.step('s3', () => 'v3'));
    const { rows: [renewed] } = await pool.query(
      `select (extract(epoch from r.lease_expires_at - c.created_at) * 1000)::float8 as ms
       from durable.checkpoints c join durable.runs r on r.task_id = c.task_id where c.task_id = $1 and c.name = 'step:s3'`,
      [taskId],
    );
    expect(renewed.ms).toBe(leaseMs);

    // A heartbeat without an argument renews for leaseMs from its own time.
    await advanceClock(pool, 5_000);
    let before = await dbNow(pool);
    await exec.call((ctx) => ctx.heartbeat());
    let after = await dbNow(pool);
    let lease = (await leaseRow(pool, runId)).lease_expires_at;
    expect(lease.getTime()).toBeGreaterThanOrEqual(before.getTime() + leaseMs);
    expect(lease.getTime()).toBeLessThanOrEqual(after.getTime() + leaseMs);
    expect(lease.getTime()).toBeGreaterThanOrEqual(leaseAfterCheckpoint.getTime() + 5_000);

    // heartbeat(extendMs) renews for exactly that long.
    before = await dbNow(pool);
    await exec.call((ctx) => ctx.heartbeat(90_000));
    after = await dbNow(pool);
    lease = (await leaseRow(pool, runId)).lease_expires_at;
    expect(lease.getTime()).toBeGreaterThanOrEqual(before.getTime() + 90_000);
    expect(lease.getTime()).toBeLessThanOrEqual(after.getTime() + 90_000);

    exec.finish('done');
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe('done');
    const [finished] = await runsOf(pool, taskId);
    expect(finished).toMatchObject({ state: 'completed', lease_expires_at: null });
  });

  it('ctx.heartbeat(0), heartbeat(-5) and heartbeat(NaN) are refused with InvalidArgumentError and change nothing', async () => {
    const { taskId, runId } = await t.client.spawn('remote', {});
    const exec = await remote.execution(taskId);
    const leaseBefore = (await leaseRow(pool, runId)).lease_text;

    await expect(exec.call((ctx) => ctx.heartbeat(0))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(exec.call((ctx) => ctx.heartbeat(-5))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(exec.call((ctx) => ctx.heartbeat(Number.NaN))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await leaseRow(pool, runId)).lease_text).toBe(leaseBefore);

    // The refusals did not stop the execution: the context still works.
    await expect(exec.call((ctx) => ctx.step('still-alive', () => 1))).resolves.toBe(1);
    exec.finish('ok');
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe('ok');
    expect(await runsOf(pool, taskId)).toHaveLength(1);
  });
});

describe('short leases on one worker', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [RemoteTask, HeartbeatingTask], { worker: { leaseMs: 600, workerId: 'short-w' } });
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('with maxAttempts 1, a lease expiry fails the task with LeaseExpired and the late completion is refused', async () => {
    const { taskId, runId } = await t.client.spawn('remote', {}, { maxAttempts: 1 });
    const exec = await remote.execution(taskId);

    // The handler blocks without checkpoints; the worker's own poll sweeps the expired lease.
    await eventually(async () => (await taskRow(pool, taskId)).state === 'failed', 15_000, 'the task to fail');
    const task = await t.client.getTask(taskId);
    expect(task).toMatchObject({ state: 'failed', attempts: 1, error: { name: 'LeaseExpired' } });
    const runs = await runsOf(pool, taskId);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: runId, attempt: 1, state: 'failed', lease_expires_at: null });
    expect(runs[0]!.error).toMatchObject({ name: 'LeaseExpired', workerId: 'short-w', attempt: 1 });

    // The handler wakes up late: its context call is refused and its return value is not recorded.
    await expect(exec.call((ctx) => ctx.step('late', () => 'late'))).rejects.toBeInstanceOf(Error);
    exec.finish('late result');
    await exec.done;
    await new Promise((resolve) => setTimeout(resolve, 400));
    const after = await taskRow(pool, taskId);
    expect(after).toMatchObject({ state: 'failed', attempts: 1, result: null });
    expect(after.error).toMatchObject({ name: 'LeaseExpired' });
    const { rows: checkpoints } = await pool.query('select name from durable.checkpoints where task_id = $1', [taskId]);
    expect(checkpoints).toEqual([]);
    expect(await runsOf(pool, taskId)).toHaveLength(1);
  });

  it('a long step that heartbeats every leaseMs/3 keeps its lease and completes on attempt 1', async () => {
    longStepRuns = 0;
    const { taskId } = await t.client.spawn(HeartbeatingTask, { totalMs: 2_000, everyMs: 200 });
    const result = await t.client.awaitResult<{ beats: number; attempt: number }>(taskId, { timeoutMs: 20_000 });
    expect(result.attempt).toBe(1);
    expect(result.beats).toBeGreaterThanOrEqual(5);
    expect(longStepRuns).toBe(1);
    const runs = await runsOf(pool, taskId);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ attempt: 1, state: 'completed', error: null });
    expect(await t.client.getTask(taskId)).toMatchObject({ state: 'completed', attempts: 1 });
  });
});

describe('lease expiry: another worker takes over', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let a: DurableTestApp | undefined;
  let b: DurableTestApp | undefined;

  // An unhandled rejection anywhere in A's fenced-off execution fails this test: Jest reports
  // it as an error of the running test.
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    // Concurrency 2: once A holds both tasks it does not poll, so only B can sweep and claim.
    a = await startApp(db.url, [RemoteTask], { worker: { leaseMs: 500, workerId: 'worker-a', concurrency: 2 } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await pool?.end();
    await db?.drop();
  });

  it('B runs attempt 2 after A\'s lease expires; A is fenced off and keeps working', async () => {
    const policy = { retry: { kind: 'fixed', delayMs: 0 } as const, maxAttempts: 3 };
    const x = await a!.client.spawn('remote', { which: 'x' }, policy);
    const y = await a!.client.spawn('remote', { which: 'y' }, policy);
    const ax = await remote.execution(x.taskId, 0);
    const ay = await remote.execution(y.taskId, 0);
    expect([ax.ctx.attempt, ay.ctx.attempt]).toEqual([1, 1]);
    expect((await runsOf(pool, x.taskId))[0]).toMatchObject({ state: 'running', worker_id: 'worker-a' });

    // Attempt 1 checkpoints one step, then blocks without checkpoints.
    await expect(ax.call((ctx) => ctx.step('one', () => 'a-one'))).resolves.toBe('a-one');
    await expect(ay.call((ctx) => ctx.step('one', () => 'a-one'))).resolves.toBe('a-one');

    b = await startApp(db.url, [RemoteTask], { worker: { leaseMs: 60_000, workerId: 'worker-b' } });
    const bx = await remote.execution(x.taskId, 1, 20_000);
    const by = await remote.execution(y.taskId, 1, 20_000);
    expect([bx.ctx.attempt, by.ctx.attempt]).toEqual([2, 2]);

    for (const task of [x, y]) {
      const runs = await runsOf(pool, task.taskId);
      expect(runs).toHaveLength(2);
      expect(runs[0]).toMatchObject({ id: task.runId, attempt: 1, state: 'failed', lease_expires_at: null });
      expect(runs[0]!.error).toMatchObject({ name: 'LeaseExpired', workerId: 'worker-a', attempt: 1 });
      expect(runs[1]).toMatchObject({ attempt: 2, state: 'running', worker_id: 'worker-b' });
      expect(await taskRow(pool, task.taskId)).toMatchObject({ state: 'running', attempts: 2 });
    }

    // B replays attempt 1's checkpoint and writes its own.
    let bOneRan = false;
    await expect(bx.call((ctx) => ctx.step('one', () => ((bOneRan = true), 'b-one')))).resolves.toBe('a-one');
    expect(bOneRan).toBe(false);
    await expect(bx.call((ctx) => ctx.step('two', () => 'b-two'))).resolves.toBe('b-two');
    await expect(by.call((ctx) => ctx.step('one', () => 'b-one'))).resolves.toBe('a-one');
    await expect(by.call((ctx) => ctx.step('two', () => 'b-two'))).resolves.toBe('b-two');

    // A wakes up while B holds attempt 2. On x it tries the next step: refused; every later call
    // throws without running its function; its return value is ignored.
    const aThree: string[] = [];
    const aStep = await ax.call((ctx) => ctx.step('two', () => 'a-two')).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
    expect(aStep).toEqual({ error: expect.any(Error) });
    await expect(ax.call((ctx) => ctx.step('three', () => aThree.push('ran')))).rejects.toBeInstanceOf(Error);
    await expect(ax.call((ctx) => ctx.heartbeat())).rejects.toBeInstanceOf(Error);
    expect(aThree).toEqual([]);
    ax.finish('result-from-a');
    // On y it returns at once: the completion itself is refused by the fence.
    ay.finish('result-from-a');
    await Promise.all([ax.done, ay.done]);
    await new Promise((resolve) => setTimeout(resolve, 300));

    for (const task of [x, y]) {
      expect(await taskRow(pool, task.taskId)).toMatchObject({ state: 'running', attempts: 2, result: null });
      const { rows } = await pool.query(
        'select name, value, attempt from durable.checkpoints where task_id = $1 order by name',
        [task.taskId],
      );
      expect(rows).toEqual([
        { name: 'step:one', value: 'a-one', attempt: 1 },
        { name: 'step:two', value: 'b-two', attempt: 2 },
      ]);
      expect((await runsOf(pool, task.taskId))[1]).toMatchObject({ attempt: 2, state: 'running', worker_id: 'worker-b' });
    }

    bx.finish('result-from-b');
    by.finish('result-from-b');
    await expect(b.client.awaitResult(x.taskId, { timeoutMs: 10_000 })).resolves.toBe('result-from-b');
    await expect(b.client.awaitResult(y.taskId, { timeoutMs: 10_000 })).resolves.toBe('result-from-b');
    for (const task of [x, y]) {
      const runs = await runsOf(pool, task.taskId);
      expect(runs.map((run) => [run.attempt, run.state, run.worker_id])).toEqual([
        [1, 'failed', 'worker-a'],
        [2, 'completed', 'worker-b'],
      ]);
      expect(await taskRow(pool, task.taskId)).toMatchObject({ state: 'completed', attempts: 2, result: 'result-from-b', error: null });
    }

    // A stopped quietly and its worker still works: with B gone, A runs the next task.
    await b.close();
    b = undefined;
    const z = await a!.client.spawn('remote', { which: 'z' });
    const az = await remote.execution(z.taskId, 0);
    await expect(az.call((ctx) => ctx.step('one', () => 'z-one'))).resolves.toBe('z-one');
    az.finish('z-done');
    await expect(a!.client.awaitResult(z.taskId, { timeoutMs: 10_000 })).resolves.toBe('z-done');
    expect((await runsOf(pool, z.taskId)).map((run) => [run.attempt, run.state, run.worker_id])).toEqual([
      [1, 'completed', 'worker-a'],
    ]);
  });
});

describe('claim_tasks sweeps are bounded by its limit', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let producer: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    // No worker: the only claim_tasks calls are the test's own.
    producer = await startApp(db.url, [], { worker: false });
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await producer?.close();
    await pool?.end();
    await db?.drop();
  });

  const claim = (queue: string, worker: string, limit: number, leaseMs: number) =>
    pool.query(`select * from durable.claim_tasks(array[$1], $2, $3, $4)`, [queue, worker, limit, leaseMs]);

  it('fails at most `limit` runs with expired leases per call', async () => {
    const queue = 'sweep-lease';
    for (let i = 0; i < 30; i++) await producer.client.spawn('ghost-task', { i }, { queue });
    const ghost = await claim(queue, 'ghost', 30, 1);
    expect(ghost.rows.filter((row) => row.run_id !== null)).toHaveLength(30);
    await eventually(async () => {
      const { rows } = await pool.query(
        `select count(*)::int as n from durable.runs where queue = $1 and state = 'running' and lease_expires_at <= durable.now()`,
        [queue],
      );
      return rows[0].n === 30;
    }, 5_000, 'the 30 leases to expire');

    const countExpired = async () => {
      const { rows } = await pool.query(
        `select count(*)::int as n from durable.runs where queue = $1 and state = 'failed' and error->>'name' = 'LeaseExpired'`,
        [queue],
      );
      return rows[0].n as number;
    };

    const first = await claim(queue, 'w', 5, 60_000);
    expect(await countExpired()).toBe(5);
    // The next attempts wait for the default retry delay (1 s), so this call claimed nothing.
    expect(first.rows.filter((row) => row.run_id !== null)).toEqual([]);
    const { rows: states } = await pool.query(
      `select state, worker_id, attempt, count(*)::int as n from durable.runs where queue = $1
       group by state, worker_id, attempt order by state, attempt`,
      [queue],
    );
    expect(states).toEqual([
      { state: 'failed', worker_id: 'ghost', attempt: 1, n: 5 },
      { state: 'pending', worker_id: null, attempt: 2, n: 5 },
      { state: 'running', worker_id: 'ghost', attempt: 1, n: 25 },
    ]);
    const { rows: errors } = await pool.query(
      `select error from durable.runs where queue = $1 and state = 'failed'`,
      [queue],
    );
    for (const { error } of errors) expect(error).toMatchObject({ name: 'LeaseExpired', workerId: 'ghost', attempt: 1 });

    await claim(queue, 'w', 5, 60_000);
    expect(await countExpired()).toBe(10);
  });

  it('cancels at most `limit` tasks by policy (maxDelayMs) per call', async () => {
    const queue = 'sweep-policy';
    for (let i = 0; i < 30; i++) {
      // delayMs far beyond maxDelayMs: none of them can be claimed, only cancelled by policy.
      await producer.client.spawn('late-task', { i }, { queue, delayMs: 3_600_000, cancellation: { maxDelayMs: 1_000 } });
    }
    await advanceClock(pool, 2_000);
    const countCancelled = async () => {
      const { rows } = await pool.query(
        `select count(*)::int as n from durable.tasks where queue = $1 and state = 'cancelled'`,
        [queue],
      );
      return rows[0].n as number;
    };
    expect(await countCancelled()).toBe(0);

    const first = await claim(queue, 'w', 5, 60_000);
    expect(first.rows.filter((row) => row.run_id !== null)).toEqual([]);
    expect(await countCancelled()).toBe(5);
    const { rows } = await pool.query(
      `select t.error, r.state as run_state from durable.tasks t join durable.runs r on r.task_id = t.id
       where t.queue = $1 and t.state = 'cancelled'`,
      [queue],
    );
    for (const row of rows) {
      expect(row.run_state).toBe('cancelled');
      expect(row.error.message).toMatch(/maxDelayMs/);
    }

    await claim(queue, 'w', 5, 60_000);
    expect(await countCancelled()).toBe(10);
    const { rows: pending } = await pool.query(
      `select count(*)::int as n from durable.tasks where queue = $1 and state = 'pending'`,
      [queue],
    );
    expect(pending[0].n).toBe(20);
  });
});
