/**
 * `TaskSnapshot.waitingFor` against a real Postgres: each reason the schema can tell today
 * ('queued', 'delayed', 'retry', 'sleep', 'event', 'children', 'noWorker'), null for running and
 * terminal tasks, the same answer from getTask and listTasks, and the workers' heartbeats it
 * relies on (written by the worker loop, deleted when a worker stops, expired when a worker
 * vanished, not rewritten while an idle worker's LISTEN connection holds its lock). 'concurrency' and 'rateLimit': waiting-for-limits.spec.ts.
 */
import type pg from 'pg';
import { DurableClient, type DurableLogger, type TaskContext, type TaskSnapshot } from '../../lib/index.js';
import { eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { durableTask } from '../helpers/durable-task.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const HOUR = 3_600_000;
const silent: DurableLogger = { log() {}, warn() {}, error() {} };

// Blocker executions wait here until release() lets every waiting one go.
const waiters: (() => void)[] = [];
const released = () => new Promise<void>((resolve) => waiters.push(resolve));
const release = () => { for (const resolve of waiters.splice(0)) resolve(); };

const Blocker = durableTask('Blocker', { name: 'blocker', queue: 'busy' }, async () => {
  await released();
});
const Sleeper = durableTask('Sleeper', { name: 'sleeper' }, async (_p: unknown, ctx: TaskContext) => {
  await ctx.sleepFor('nap', HOUR);
});
const Waiter = durableTask('Waiter', { name: 'waiter' }, async (p: { event: string; timeoutMs?: number }, ctx: TaskContext) => {
  await ctx.awaitEvent(p.event, p.timeoutMs === undefined ? {} : { timeoutMs: p.timeoutMs });
});
const Flaky = durableTask('Flaky', { name: 'flaky', maxAttempts: 3, retry: { kind: 'fixed', delayMs: HOUR } }, async () => {
  throw new Error('flaked');
});
const Parent = durableTask('Parent', { name: 'parent' }, async (p: { events: string[] }, ctx: TaskContext) => {
  const handles = [];
  for (const [i, event] of p.events.entries()) handles.push(await ctx.spawn(`kid-${i}`, 'waiter', { event }));
  return ctx.joinAll(handles);
});
const Quick = durableTask('Quick', { name: 'quick' }, () => 'done');

describe('TaskSnapshot.waitingFor', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let app: DurableTestApp;
  let busy: DurableTestApp;
  let client: DurableClient;

  const settled = (taskId: string, state: TaskSnapshot['state']) =>
    eventually(async () => {
      const task = await client.getTask(taskId);
      return task?.state === state && task;
    }, 10_000, `task ${taskId} ${state}`);

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    app = await startApp(db.url, [Sleeper, Waiter, Flaky, Parent, Quick], { worker: { concurrency: 10 } });
    busy = await startApp(db.url, [Blocker], { worker: { queues: ['busy'], concurrency: 1, workerId: 'busy-worker' } });
    client = app.client;
    await eventually(async () => (await sql.query(`select 1 from durable.worker_heartbeats where queue = 'busy'`)).rowCount === 1);
  });
  afterAll(async () => {
    release();
    await busy?.close();
    await app?.close();
    await sql?.end();
    await db?.drop();
  });

  it('is null for a running task, and "queued" for a due task behind it when the worker is full', async () => {
    const running = await client.spawn('blocker', {}, { queue: 'busy' });
    await settled(running.taskId, 'running');
    const behind = await client.spawn('blocker', {}, { queue: 'busy' });
    expect((await client.getTask(running.taskId))!.waitingFor).toBeNull();
    const task = await client.getTask(behind.taskId);
    expect(task!.state).toBe('pending');
    expect(task!.waitingFor).toEqual({ reason: 'queued', message: expect.stringContaining('free worker slot on queue "busy"') });
    await eventually(() => waiters.length === 1, 10_000, 'the first blocker to wait');
    release();
    await settled(running.taskId, 'completed');
    await eventually(() => waiters.length === 1, 10_000, 'the second blocker to wait');
    release();
    await settled(behind.taskId, 'completed');
  });

  it('is null for a terminal task', async () => {
    const { taskId } = await client.spawn('quick');
    expect((await settled(taskId, 'completed')).waitingFor).toBeNull();
  });

  it('"delayed" with its start time', async () => {
    const { taskId } = await client.spawn('quick', {}, { delayMs: HOUR });
    const task = (await client.getTask(taskId))!;
    const start = task.createdAt.getTime() + HOUR;
    expect(task.waitingFor).toMatchObject({ reason: 'delayed', message: expect.stringMatching(/^not to start before /) });
    expect(Math.abs(task.waitingFor!.until!.getTime() - start)).toBeLessThan(1000);
  });

  it('"retry" after a failed attempt, until the retry delay is over, naming the failure', async () => {
    const { taskId } = await client.spawn('flaky');
    const task = await eventually(async () => {
      const t = await client.getTask(taskId);
      return t?.attempts === 2 && t;
    });
    expect(task.state).toBe('pending');
    expect(task.waitingFor).toMatchObject({ reason: 'retry', message: expect.stringContaining('Error: flaked') });
    expect(task.waitingFor!.until!.getTime()).toBeGreaterThan(Date.now() + HOUR - 60_000);
  });

  it('"sleep" until the wake time', async () => {
    const { taskId } = await client.spawn('sleeper');
    const task = await settled(taskId, 'sleeping');
    expect(task.waitingFor).toMatchObject({ reason: 'sleep', message: expect.stringMatching(/^sleeping until /) });
    expect(task.waitingFor!.until!.getTime()).toBeGreaterThan(Date.now() + HOUR - 60_000);
  });

  it('"event" with the event name, and its timeout when it has one', async () => {
    const forever = await client.spawn('waiter', { event: 'never' });
    const timed = await client.spawn('waiter', { event: 'soon', timeoutMs: HOUR });
    const a = await settled(forever.taskId, 'sleeping');
    const b = await settled(timed.taskId, 'sleeping');
    expect(a.waitingFor).toEqual({ reason: 'event', eventName: 'never', message: 'waiting for event "never" on queue "default"' });
    expect(b.waitingFor).toMatchObject({ reason: 'event', eventName: 'soon' });
    expect(b.waitingFor!.until!.getTime()).toBeGreaterThan(Date.now() + HOUR - 60_000);
    expect(b.waitingFor!.message).toContain(`until ${b.waitingFor!.until!.toISOString()}`);
  });

  it('"children" with the ids of the children that have not finished', async () => {
    const { taskId } = await client.spawn('parent', { events: ['kid-a', 'kid-b'] });
    await settled(taskId, 'sleeping');
    const kids = await client.listTasks({ parentTaskId: taskId });
    expect(kids).toHaveLength(2);
    const [first, second] = [...kids].reverse(); // listTasks is newest first; the join lists spawn order
    let parent = (await client.getTask(taskId))!;
    expect(parent.waitingFor).toMatchObject({ reason: 'children', childTaskIds: [first.taskId, second.taskId] });
    expect(parent.waitingFor!.message).toContain('2 child task(s)');
    expect(parent.waitingFor!.until).toBeUndefined();

    await client.emitEvent('kid-a');
    await settled(first.taskId, 'completed');
    parent = (await client.getTask(taskId))!;
    expect(parent.waitingFor).toMatchObject({ reason: 'children', childTaskIds: [second.taskId] });
    await client.emitEvent('kid-b');
    expect((await settled(taskId, 'completed')).waitingFor).toBeNull();
  });

  it('"noWorker" for a due task of a queue no live worker polls, and a note beside a wait that ends later', async () => {
    const { taskId } = await client.spawn('quick', {}, { queue: 'nobody' });
    expect((await client.getTask(taskId))!.waitingFor).toEqual({
      reason: 'noWorker',
      message: 'due now, but no worker has polled queue "nobody" recently: start a worker with this queue in its queues',
    });
    const later = await client.spawn('quick', {}, { queue: 'nobody', delayMs: HOUR });
    const delayed = (await client.getTask(later.taskId))!.waitingFor!;
    expect(delayed.reason).toBe('delayed');
    expect(delayed.message).toMatch(/; no worker polls queue "nobody" now$/);
  });

  it('a heartbeat counts until it expires: "queued" while it is live, "noWorker" after', async () => {
    const { taskId } = await client.spawn('quick', {}, { queue: 'ghost' });
    await sql.query(`insert into durable.worker_heartbeats (queue, worker_id, concurrency, in_flight, seen_at, expires_at)
      values ('ghost', 'vanished', 1, 0, now() - interval '1 minute', now() + interval '1 minute')`);
    expect((await client.getTask(taskId))!.waitingFor!.reason).toBe('queued');
    await sql.query(`update durable.worker_heartbeats set expires_at = now() - interval '1 second' where worker_id = 'vanished'`);
    expect((await client.getTask(taskId))!.waitingFor!.reason).toBe('noWorker');
  });

  it('the worker loop writes its heartbeat per queue, and deletes it when the worker stops', async () => {
    const beats = async () => (await sql.query(
      `select queue, concurrency, expires_at > now() + interval '20 seconds' as live from durable.worker_heartbeats where worker_id = 'stopping' order by queue`,
    )).rows;
    // A worker gone for more than an hour is forgotten by the next beat of any worker.
    await sql.query(`insert into durable.worker_heartbeats (queue, worker_id, concurrency, in_flight, seen_at, expires_at)
      values ('solo', 'ancient', 1, 0, now() - interval '3 hours', now() - interval '2 hours')`);
    const other = await startApp(db.url, [], { worker: { queues: ['solo', 'solo2'], concurrency: 3, workerId: 'stopping' } });
    try {
      await eventually(async () => (await beats()).length === 2);
      expect((await sql.query(`select 1 from durable.worker_heartbeats where worker_id = 'ancient'`)).rowCount).toBe(0);
      expect(await beats()).toEqual([{ queue: 'solo', concurrency: 3, live: true }, { queue: 'solo2', concurrency: 3, live: true }]);
      const { taskId } = await client.spawn('quick', {}, { queue: 'solo', delayMs: HOUR });
      expect((await client.getTask(taskId))!.waitingFor!.message).not.toContain('no worker');
    } finally {
      await other.close();
    }
    expect(await beats()).toEqual([]);
  });

  /** The sessions of this database that hold the liveness lock of `workerId` (`holdWorker`). */
  const lockHolders = async (workerId: string) => (await sql.query(`select pid from pg_locks where locktype = 'advisory' and objsubid = 2
    and granted and objid = (hashtext($1) & 2147483647)::oid and database = (select oid from pg_database where datname = current_database())`,
  [workerId])).rows.map((row) => row.pid as number);

  it('an idle worker whose LISTEN connection holds its lock writes no beat, and is live past expires_at; the lock is taken again on a new connection', async () => {
    const other = await startApp(db.url, [], { worker: { queues: ['held'], pollIntervalMs: 100, workerId: 'holder' } });
    const row = async () => (await sql.query(`select xmin::text as xmin from durable.worker_heartbeats where worker_id = 'holder'`)).rows[0];
    const polled = async (taskId: string) => !(await client.getTask(taskId))!.waitingFor!.message.includes('no worker');
    try {
      await eventually(async () => (await lockHolders('holder')).length === 1 && (await row()) !== undefined, 10_000, 'the lock and the first beat');
      const [pid] = await lockHolders('holder');
      const first = await row();
      // Beats every 500 ms here: four of them write nothing while the worker idles.
      await sleep(2000);
      expect(await row()).toEqual(first);
      // As if it had idled for minutes: its row's expiry is long past, the lock says it lives.
      await sql.query(`update durable.worker_heartbeats set expires_at = now() - interval '1 hour' where worker_id = 'holder'`);
      const { taskId } = await client.spawn('quick', {}, { queue: 'held', delayMs: HOUR });
      expect(await polled(taskId)).toBe(true);
      // Its LISTEN session ends: the notifier makes a new one, which takes the lock again.
      await sql.query(`select pg_terminate_backend($1)`, [pid]);
      await eventually(async () => {
        const now = await lockHolders('holder');
        return now.length === 1 && now[0] !== pid;
      }, 10_000, 'the lock on the new LISTEN connection');
      expect(await polled(taskId)).toBe(true);
    } finally {
      await other.close();
    }
    // Stopped: its lock is released (as its session ends, or by the unlock before).
    await eventually(async () => (await lockHolders('holder')).length === 0, 5000, 'the lock released');
  });

  it('a worker whose lock a lingering session held takes it at the first beat after that session let go', async () => {
    // The worker's own statement, from another session: as an old LISTEN session the server has not ended yet.
    const lingering = await sql.connect();
    try {
      const { buildStatements } = await import('../../lib/engine/sql/statements.js');
      const { text, values } = buildStatements('durable').holdWorker('late');
      expect((await lingering.query(text, values)).rows[0].held).toBe(true);
      const { rows: [{ pid: lingeringPid }] } = await lingering.query('select pg_backend_pid() as pid');
      const other = await startApp(db.url, [], { worker: { queues: ['late'], pollIntervalMs: 100, workerId: 'late' } });
      try {
        await eventually(async () => (await sql.query(`select 1 from durable.worker_heartbeats where worker_id = 'late'`)).rowCount === 1, 10_000, 'the first beat');
        expect(await lockHolders('late')).toEqual([lingeringPid]);
        await lingering.query(`select pg_advisory_unlock_all()`);
        await eventually(async () => {
          const now = await lockHolders('late');
          return now.length === 1 && now[0] !== lingeringPid;
        }, 5000, "the worker's LISTEN session to take the lock");
      } finally {
        await other.close();
      }
    } finally {
      lingering.release();
    }
  });

  it("takes the worker's lock once per session: taken again (a beat saw it free while the first take was on its way), one unlock lets it go", async () => {
    const { buildStatements } = await import('../../lib/engine/sql/statements.js');
    const { holdWorker, releaseWorker } = buildStatements('durable');
    const session = await sql.connect();
    try {
      for (let i = 0; i < 2; i++) expect((await session.query(holdWorker('twice'))).rows[0].held).toBe(true);
      const { rows: [{ pid }] } = await session.query('select pg_backend_pid() as pid');
      expect(await lockHolders('twice')).toEqual([pid]);
      expect((await session.query(releaseWorker('twice'))).rows[0].released).toBe(true);
      expect(await lockHolders('twice')).toEqual([]);
    } finally {
      session.release();
    }
  });

  it('listTasks gives every row the waitingFor that getTask gives', async () => {
    const parent = await client.spawn('parent', { events: ['never-1', 'never-2'] });
    await settled(parent.taskId, 'sleeping');
    // The parent sleeps once both children are spawned, not once they wait: a child still running reads null in the page and a wait in getTask.
    for (const kid of await client.listTasks({ parentTaskId: parent.taskId })) await settled(kid.taskId, 'sleeping');
    const page = await client.listTasks({ limit: 1000 });
    expect(page.length).toBeGreaterThan(10);
    const reasons = new Set(page.map((task) => task.waitingFor?.reason ?? null));
    for (const reason of ['delayed', 'retry', 'sleep', 'event', 'children', 'noWorker', null]) expect(reasons).toContain(reason);
    expect(page.find((task) => task.taskId === parent.taskId)!.waitingFor!.childTaskIds).toHaveLength(2);
    for (const task of page) {
      const alone = await client.getTask(task.taskId);
      expect({ id: task.taskId, waitingFor: task.waitingFor }).toEqual({ id: task.taskId, waitingFor: alone!.waitingFor });
    }
  });

  it('a client outside Nest reads it too, and a producer-only app writes no heartbeat', async () => {
    const producer = await startApp(db.url, [], { worker: false });
    await producer.close();
    const outside = await DurableClient.connect({ databaseUrl: db.url, logger: silent, migrationsRun: false });
    try {
      const page = await outside.listTasks({ queue: 'nobody', limit: 10 });
      expect(page.map((task) => task.waitingFor?.reason).sort()).toEqual(['delayed', 'noWorker']);
    } finally {
      await outside.close();
    }
    const { rows } = await sql.query(`select distinct queue from durable.worker_heartbeats order by queue`);
    expect(rows.map((row) => row.queue)).toEqual(['busy', 'default', 'ghost']);
  });
});
