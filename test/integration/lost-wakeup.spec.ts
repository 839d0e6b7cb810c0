/**
 * No lost wake-ups: an event emitted at any moment relative to a task's wait is either
 * returned by the wait or wakes the waiting run, never neither.
 *
 * 1. Deterministic interleavings of the SQL functions on two raw connections, with one side's
 *    transaction held open so the other must block: waiter first, emitter first, each with and
 *    without an existing placeholder row for the event; then many unordered races.
 * 2. A stress run: hundreds of tasks on two workers, each awaiting its own event, with emits
 *    before the spawn, concurrent with it, right after it, at the moment the handler calls
 *    awaitEvent, and a little later; some events already have a waiting companion task.
 *
 * Both parts were checked against deliberately broken copies of durable.await_event in a
 * scratch database (without `for share` on the event row; without the placeholder insert):
 * each break fails the interleaving tests and leaves stress tasks stuck.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { eventually, sleep as pause, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const LEASE_MS = 600_000;

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

async function pidOf(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
}

// ---------------------------------------------------------------------------------------------

describe('await_event and emit_event interleavings (SQL functions on two connections)', () => {
  let db: TestDatabase;
  let producer: DurableTestApp;
  let pool: pg.Pool;
  let a: pg.Client;
  let b: pg.Client;
  let bPid: number;
  let aPid: number;

  beforeAll(async () => {
    db = await createTestDatabase();
    // No worker anywhere: the test claims and drives every run itself.
    producer = await startApp(db.url, [], { worker: false });
    pool = sqlPool(db.url);
    a = await connect(db.url);
    b = await connect(db.url);
    aPid = await pidOf(a);
    bPid = await pidOf(b);
  });
  afterEach(async () => {
    // After a failed assertion one side may still hold a transaction the other is blocked on:
    // roll back both at once, so the free one releases the blocked one.
    await Promise.all([a?.query('rollback'), b?.query('rollback')]);
  });
  afterAll(async () => {
    await a?.end();
    await b?.end();
    await producer?.close();
    await pool?.end();
    await db?.drop();
  });

  /** Spawns a task that no process handles and claims its run as worker w1. */
  async function spawnAndClaim(queue: string): Promise<{ taskId: string; runId: string }> {
    const spawned = await producer.client.spawn('lost-wakeup-raw', {}, { queue });
    const { rows } = await pool.query(
      'select * from durable.claim_tasks(array[$1], $2, 1, $3) where run_id is not null',
      [queue, 'w1', LEASE_MS],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ task_id: spawned.taskId, run_id: spawned.runId, attempt: 1 });
    return { taskId: spawned.taskId, runId: spawned.runId };
  }

  function awaitEventSql(client: pg.Client | pg.Pool, run: { taskId: string; runId: string }, queue: string, event: string) {
    return client.query<{ outcome: string; value: unknown }>(
      // Each run is claimed once (spawnAndClaim): its claim epoch is 1.
      `select * from durable.await_event($1, $2, 'w1', 1, $3, $4, $5, null, 1, $6)`,
      [run.taskId, run.runId, queue, event, `event:${event}`, LEASE_MS],
    );
  }

  function emitSql(client: pg.Client | pg.Pool, queue: string, event: string, payload: unknown) {
    return client.query<{ woken: number | null }>(
      'select durable.emit_event($1, $2, $3) as woken',
      [queue, event, JSON.stringify(payload)],
    );
  }

  /** Asserts `promise` is stuck on a lock held by the other connection (and has not settled). */
  async function expectBlocked(promise: Promise<unknown>, pid: number, what: string): Promise<void> {
    let settled = false;
    promise.then(() => (settled = true), () => (settled = true));
    await eventually(async () => {
      const { rows } = await pool.query('select wait_event_type from pg_stat_activity where pid = $1', [pid]);
      return rows[0]?.wait_event_type === 'Lock';
    }, 10_000, `${what} to wait on a lock`);
    await pause(300);
    expect(settled).toBe(false);
  }

  /** The run was woken by the emit: pending, due now, with the payload checkpointed, no wait left. */
  async function expectWoken(run: { taskId: string; runId: string }, event: string, payload: unknown): Promise<void> {
    const { rows } = await pool.query(
      `select r.state as run_state, t.state as task_state, r.wake_event, r.lease_expires_at,
              r.available_at <= durable.now() as due
       from durable.runs r join durable.tasks t on t.id = r.task_id where r.id = $1`,
      [run.runId],
    );
    expect(rows).toEqual([{ run_state: 'pending', task_state: 'pending', wake_event: null, lease_expires_at: null, due: true }]);
    expect((await pool.query('select count(*)::int as n from durable.waits where run_id = $1', [run.runId])).rows)
      .toEqual([{ n: 0 }]);
    const { rows: checkpoints } = await pool.query(
      'select name, value, attempt from durable.checkpoints where task_id = $1',
      [run.taskId],
    );
    expect(checkpoints).toEqual([{ name: `event:${event}`, value: { payload }, attempt: 1 }]);
  }

  /** The wait returned the payload itself: the run is still running, nothing left waiting. */
  async function expectReturnedAtOnce(run: { taskId: string; runId: string }, event: string, payload: unknown): Promise<void> {
    const { rows } = await pool.query(
      `select r.state as run_state, t.state as task_state, r.lease_expires_at > durable.now() as leased
       from durable.runs r join durable.tasks t on t.id = r.task_id where r.id = $1`,
      [run.runId],
    );
    expect(rows).toEqual([{ run_state: 'running', task_state: 'running', leased: true }]);
    expect((await pool.query('select count(*)::int as n from durable.waits where run_id = $1', [run.runId])).rows)
      .toEqual([{ n: 0 }]);
    const { rows: checkpoints } = await pool.query(
      'select name, value from durable.checkpoints where task_id = $1',
      [run.taskId],
    );
    expect(checkpoints).toEqual([{ name: `event:${event}`, value: { payload } }]);
  }

  it('waiter first (new event): the emit blocks until the wait commits, then wakes the run', async () => {
    const queue = `raw-${randomUUID()}`;
    const run = await spawnAndClaim(queue);

    await a.query('begin');
    expect((await awaitEventSql(a, run, queue, 'E')).rows).toEqual([{ outcome: 'suspended', value: null }]);
    const emitting = emitSql(b, queue, 'E', { x: 1 });
    await expectBlocked(emitting, bPid, 'the emit');
    await a.query('commit');

    expect((await emitting).rows).toEqual([{ woken: 1 }]);
    await expectWoken(run, 'E', { x: 1 });
    // The next claim hands the checkpoint to the replay.
    const { rows: claimed } = await pool.query(
      'select checkpoints from durable.claim_tasks(array[$1], $2, 1, $3) where run_id is not null',
      [queue, 'w1', LEASE_MS],
    );
    expect(claimed).toEqual([{ checkpoints: [['event:E', { payload: { x: 1 } }, false]] }]);
  });

  it('waiter first (event row already there as another waiter\'s placeholder): same outcome', async () => {
    const queue = `raw-${randomUUID()}`;
    const earlier = await spawnAndClaim(queue);
    expect((await awaitEventSql(pool, earlier, queue, 'E')).rows).toEqual([{ outcome: 'suspended', value: null }]);
    const run = await spawnAndClaim(queue);

    await a.query('begin');
    expect((await awaitEventSql(a, run, queue, 'E')).rows).toEqual([{ outcome: 'suspended', value: null }]);
    const emitting = emitSql(b, queue, 'E', { x: 2 });
    await expectBlocked(emitting, bPid, 'the emit');
    await a.query('commit');

    expect((await emitting).rows).toEqual([{ woken: 2 }]);
    await expectWoken(earlier, 'E', { x: 2 });
    await expectWoken(run, 'E', { x: 2 });
  });

  it('emitter first (new event): the wait blocks until the emit commits, then returns the payload', async () => {
    const queue = `raw-${randomUUID()}`;
    const run = await spawnAndClaim(queue);

    await b.query('begin');
    expect((await emitSql(b, queue, 'E', { x: 3 })).rows).toEqual([{ woken: 0 }]);
    const awaiting = awaitEventSql(a, run, queue, 'E');
    await expectBlocked(awaiting, aPid, 'the wait');
    await b.query('commit');

    expect((await awaiting).rows).toEqual([{ outcome: 'checkpoint', value: { payload: { x: 3 } } }]);
    await expectReturnedAtOnce(run, 'E', { x: 3 });
  });

  it('emitter first (event row already there as another waiter\'s placeholder): same outcome', async () => {
    const queue = `raw-${randomUUID()}`;
    const earlier = await spawnAndClaim(queue);
    expect((await awaitEventSql(pool, earlier, queue, 'E')).rows).toEqual([{ outcome: 'suspended', value: null }]);
    const run = await spawnAndClaim(queue);

    await b.query('begin');
    expect((await emitSql(b, queue, 'E', { x: 4 })).rows).toEqual([{ woken: 1 }]);
    const awaiting = awaitEventSql(a, run, queue, 'E');
    await expectBlocked(awaiting, aPid, 'the wait');
    await b.query('commit');

    expect((await awaiting).rows).toEqual([{ outcome: 'checkpoint', value: { payload: { x: 4 } } }]);
    await expectReturnedAtOnce(run, 'E', { x: 4 });
    await expectWoken(earlier, 'E', { x: 4 });
  });

  it('unordered races of wait and emit: always exactly one of "returned the payload" or "woken"', async () => {
    const outcomes = { returned: 0, woken: 0 };
    for (let i = 0; i < 40; i++) {
      // A queue per race, so a run woken by an earlier race is never claimed here.
      const queue = `raw-${randomUUID()}`;
      const run = await spawnAndClaim(queue);
      const event = `race-${i}`;
      // Half of the races start with a placeholder committed by an earlier waiter.
      if (i % 2 === 1) {
        const other = await spawnAndClaim(queue);
        expect((await awaitEventSql(pool, other, queue, event)).rows[0].outcome).toBe('suspended');
      }
      const jitter = Math.floor(Math.random() * 3);
      const [awaited, emitted] = await Promise.all([
        awaitEventSql(a, run, queue, event),
        pause(jitter).then(() => emitSql(b, queue, event, { i })),
      ]);
      const outcome = awaited.rows[0].outcome;
      const woken = emitted.rows[0].woken;
      const placeholderWaiters = i % 2;
      if (outcome === 'checkpoint') {
        expect(awaited.rows[0].value).toEqual({ payload: { i } });
        expect(woken).toBe(placeholderWaiters);
        await expectReturnedAtOnce(run, event, { i });
        outcomes.returned += 1;
      } else {
        expect(outcome).toBe('suspended');
        expect(woken).toBe(placeholderWaiters + 1);
        await expectWoken(run, event, { i });
        outcomes.woken += 1;
      }
    }
    expect(outcomes.returned + outcomes.woken).toBe(40);
  });
});

// ---------------------------------------------------------------------------------------------

/** Task id -> how many times its handler was invoked. */
const invocations = new Map<string, number>();
/** Event name -> called once when a handler is about to await that event (mode `at-await`). */
const atAwait = new Map<string, () => void>();

@DurableTask({ name: 'lost-wakeup-await' })
class StressAwaitTask implements DurableTaskHandler<{ event: string }, { event: string; payload: unknown }> {
  async run(params: { event: string }, ctx: TaskContext) {
    invocations.set(ctx.taskId, (invocations.get(ctx.taskId) ?? 0) + 1);
    const hook = atAwait.get(params.event);
    atAwait.delete(params.event);
    hook?.();
    const payload = await ctx.awaitEvent(params.event);
    return { event: params.event, payload };
  }
}

/**
 * When the emit is issued: before the spawn; concurrently with it; as soon as the spawn
 * returned; when the handler is about to call awaitEvent (0-3 ms later, so the emit and the
 * wait's SQL overlap: the window a lost wake-up would fall in); or up to 400 ms later.
 */
type EmitMode = 'before-spawn' | 'with-spawn' | 'right-after-spawn' | 'at-await' | 'later';
/** A task already waiting on the same event before the main task's wait (its row is a placeholder). */
type Role = EmitMode | 'companion';
const MODES: EmitMode[] = ['before-spawn', 'with-spawn', 'right-after-spawn', 'at-await', 'at-await', 'later'];

describe('lost wake-ups under load: two workers, hundreds of waits, emits at random moments', () => {
  const ROUNDS = 4;
  const PER_ROUND = 100;
  let db: TestDatabase;
  let w1: DurableTestApp;
  let w2: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    w1 = await startApp(db.url, [StressAwaitTask], { worker: { workerId: 'stress-w1', concurrency: 20 } });
    w2 = await startApp(db.url, [StressAwaitTask], { worker: { workerId: 'stress-w2', concurrency: 20 } });
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await w1?.close();
    await w2?.close();
    await pool?.end();
    await db?.drop();
  });

  it('every task completes with its own payload; none is left waiting', async () => {
    const expected = new Map<string, { event: string; payload: unknown; mode: Role }>();
    const workersSeen = new Set<string>();

    for (let round = 0; round < ROUNDS; round++) {
      const roundIds: string[] = [];
      await Promise.all(Array.from({ length: PER_ROUND }, async (_, i) => {
        const mode = MODES[i % MODES.length];
        const event = `stress-${round}-${i}-${randomUUID()}`;
        const payload = { round, i, token: randomUUID() };
        // Spread the starts, and alternate the producing app, so the two workers get mixed load.
        await pause(Math.floor(Math.random() * 200));
        const producer = i % 2 === 0 ? w1 : w2;
        const emit = () => producer.client.emitEvent(event, payload);
        const spawn = () => producer.client.spawn(StressAwaitTask, { event });
        if (i % 6 === 3 || i % 6 === 5) {
          // The first `at-await` slot and the `later` slot get a companion that waits first.
          const companionId = (await spawn()).taskId;
          expected.set(companionId, { event, payload, mode: 'companion' });
          roundIds.push(companionId);
          await eventually(async () => {
            const { rows } = await pool.query('select state from durable.tasks where id = $1', [companionId]);
            return rows[0].state === 'sleeping';
          }, 30_000, `companion ${companionId} to wait`);
        }
        let taskId: string;
        if (mode === 'before-spawn') {
          await emit();
          taskId = (await spawn()).taskId;
        } else if (mode === 'with-spawn') {
          const [spawned] = await Promise.all([spawn(), pause(Math.floor(Math.random() * 20)).then(emit)]);
          taskId = spawned.taskId;
        } else if (mode === 'right-after-spawn') {
          taskId = (await spawn()).taskId;
          await emit();
        } else if (mode === 'at-await') {
          let emitted!: Promise<void>;
          const reached = new Promise<void>((resolve) => {
            atAwait.set(event, () => {
              emitted = pause(Math.floor(Math.random() * 4)).then(emit);
              resolve();
            });
          });
          taskId = (await spawn()).taskId;
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([reached, new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`task ${taskId} never reached its awaitEvent`)), 30_000);
          })]).finally(() => clearTimeout(timer));
          await emitted;
        } else {
          taskId = (await spawn()).taskId;
          await pause(Math.floor(Math.random() * 400));
          await emit();
        }
        expected.set(taskId, { event, payload, mode });
        roundIds.push(taskId);
      }));

      try {
        await eventually(async () => {
          const { rows } = await pool.query(
            `select count(*)::int as n from durable.tasks where id = any($1) and state = 'completed'`,
            [roundIds],
          );
          return rows[0].n === roundIds.length;
        }, 40_000, `all ${roundIds.length} tasks of round ${round} to complete`);
      } catch (error) {
        const { rows: stuck } = await pool.query(
          `select t.id, t.state, r.state as run_state, r.wake_event, r.available_at,
                  (select count(*) from durable.waits w where w.task_id = t.id) as waits,
                  (select emitted_at from durable.events e where e.queue = t.queue and e.name = t.params->>'event') as emitted_at
           from durable.tasks t join durable.runs r on r.id = t.run_id
           where t.id = any($1) and t.state <> 'completed'`,
          [roundIds],
        );
        throw new Error(`${(error as Error).message}; not completed: ${JSON.stringify(stuck, null, 1)}`);
      }
      const { rows: workers } = await pool.query('select distinct worker_id from durable.runs where task_id = any($1)', [roundIds]);
      for (const row of workers) workersSeen.add(row.worker_id as string);
    }

    const ids = [...expected.keys()];
    const companionsPerRound = Array.from({ length: PER_ROUND }, (_, i) => i % 6).filter((k) => k === 3 || k === 5).length;
    expect(ids).toHaveLength(ROUNDS * (PER_ROUND + companionsPerRound));
    const { rows } = await pool.query(
      `select t.id, t.state, t.attempts, t.result,
              (select count(*)::int from durable.runs r where r.task_id = t.id) as runs
       from durable.tasks t where t.id = any($1)`,
      [ids],
    );
    expect(rows).toHaveLength(ids.length);
    for (const row of rows) {
      const want = expected.get(row.id as string)!;
      expect({ id: row.id, state: row.state, attempts: row.attempts, runs: row.runs, result: row.result }).toEqual({
        id: row.id, state: 'completed', attempts: 1, runs: 1, result: { event: want.event, payload: want.payload },
      });
      const count = invocations.get(row.id as string);
      // Emitted before the task existed: returned at once. Otherwise at most one suspension.
      if (want.mode === 'before-spawn') expect({ id: row.id, count }).toEqual({ id: row.id, count: 1 });
      else if (want.mode === 'companion') expect({ id: row.id, count }).toEqual({ id: row.id, count: 2 });
      else expect([1, 2]).toContain(count);
    }
    expect((await pool.query('select count(*)::int as n from durable.waits')).rows).toEqual([{ n: 0 }]);
    const { rows: pendingEvents } = await pool.query(
      `select count(*)::int as n from durable.events where name like 'stress-%' and emitted_at is null`,
    );
    expect(pendingEvents).toEqual([{ n: 0 }]);
    expect([...workersSeen].sort()).toEqual(['stress-w1', 'stress-w2']);
  }, 120_000);
});
