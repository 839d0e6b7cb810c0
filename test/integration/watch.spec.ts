/**
 * client.watch against a real Postgres: every transition of a task that sleeps, awaits an
 * event, fails once and completes (each state held long enough to be read; the state log, a
 * trigger, is the reference); an unknown id; unsubscribing releases the timer and the LISTEN
 * connection (counted in pg_stat_activity); 1,000 watchers in one producer-only process share
 * one LISTEN connection and one poll; nothing is notified while nothing is watched.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { firstValueFrom, lastValueFrom, toArray, type Subscription } from 'rxjs';
import {
  DurableTask, InvalidArgumentError, TaskNotFoundError, type DurableTaskHandler, type TaskContext, type TaskSnapshot,
} from '../../lib/index.js';
import { installStateLog, taskStates } from '../fixtures/events-state-log.js';
import { eventually, LISTEN_CONNECTION, sleep as pause, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const HOLD_MS = 250;

@DurableTask({ name: 'journey', retry: { kind: 'fixed', delayMs: 300 } })
class JourneyTask implements DurableTaskHandler<{ event: string }, string> {
  async run(params: { event: string }, ctx: TaskContext) {
    await ctx.step('start', async () => {
      await pause(HOLD_MS);
      await ctx.setProgress({ phase: 'started' });
      await pause(HOLD_MS);
      return 1;
    });
    await ctx.sleepFor('nap', 300);
    await ctx.step('after-nap', async () => {
      await pause(HOLD_MS);
      await ctx.setProgress({ phase: 'waiting' });
      await pause(HOLD_MS);
      return 1;
    });
    await ctx.awaitEvent(params.event);
    await ctx.step('after-event', () => pause(HOLD_MS).then(() => 1));
    if (ctx.attempt === 1) throw new Error('fails once');
    await ctx.step('final', async () => {
      await pause(HOLD_MS);
      await ctx.setProgress({ phase: 'done' });
      await pause(HOLD_MS);
      return 1;
    });
    return 'ok';
  }
}

@DurableTask({ name: 'quick', queue: 'parked' })
class QuickTask implements DurableTaskHandler<{ n: number }, number> {
  async run(params: { n: number }) {
    return params.n;
  }
}

const brief = (s: TaskSnapshot) => `${s.state}/${s.attempts}/${JSON.stringify(s.progress)}`;

/** The LISTEN connections to the database. */
async function listeners(sql: pg.Pool, database: string): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where datname = $1 and ${LISTEN_CONNECTION}`,
    [database],
  );
  return rows[0].n;
}

describe('client.watch', () => {
  let db: TestDatabase;
  let worker: DurableTestApp;
  let producer: DurableTestApp;
  let sql: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    worker = await startApp(db.url, [JourneyTask], { worker: { pollIntervalMs: 100 } });
    producer = await startApp(db.url, [QuickTask], { worker: false });
    await installStateLog(sql);
  });
  afterAll(async () => {
    await producer?.close();
    await worker?.close();
    await sql?.end();
    await db?.drop();
  });

  it('emits the current snapshot, then every change of state, attempts and progress, and completes after the terminal one', async () => {
    const event = `go-${randomUUID()}`;
    const { taskId } = await producer.client.spawn('journey', { event }, { queue: 'default', delayMs: 300 });
    const seen: TaskSnapshot[] = [];
    const done = new Promise<void>((resolve, reject) => {
      producer.client.watch(taskId).subscribe({
        next: (snapshot) => {
          seen.push(snapshot);
          if (snapshot.state === 'sleeping' && (snapshot.progress as { phase: string }).phase === 'waiting') {
            void producer.client.emitEvent(event, { ok: true });
          }
        },
        error: reject,
        complete: resolve,
      });
    });
    await done;
    const got = seen.map(brief);
    const expected = [
      'pending/1/null',
      'running/1/null',
      'running/1/{"phase":"started"}',
      'sleeping/1/{"phase":"started"}',
      'running/1/{"phase":"started"}',
      'running/1/{"phase":"waiting"}',
      'sleeping/1/{"phase":"waiting"}',
      // The emit makes the task pending and the worker claims it within milliseconds: a watcher
      // sees that pending only if its read falls in between.
      ...(got.includes('pending/1/{"phase":"waiting"}') ? ['pending/1/{"phase":"waiting"}'] : []),
      'running/1/{"phase":"waiting"}',
      'pending/2/{"phase":"waiting"}',
      'running/2/{"phase":"waiting"}',
      'running/2/{"phase":"done"}',
      'completed/2/{"phase":"done"}',
    ];
    expect(got).toEqual(expected);
    expect(seen.at(-1)!.result).toBe('ok');
    // The reference: every state the task had, from the trigger log, each one seen by the watcher.
    const states = (await taskStates(sql, taskId)).map((s) => s.replace("@", "/"));
    const watched = got.map((line) => line.split('/').slice(0, 2).join('/')).filter((line, i, all) => line !== all[i - 1]);
    const withoutShortPending = (list: string[]) => list.filter((line, i) => i === 0 || line !== 'pending/1');
    expect(withoutShortPending(watched)).toEqual(withoutShortPending(states));
    expect(states.filter((line) => line === 'pending/1')).toHaveLength(2); // spawned, and woken by the emit
  });

  it('errors with TaskNotFoundError for an unknown id, and refuses a malformed one at once', async () => {
    await expect(firstValueFrom(producer.client.watch(randomUUID()))).rejects.toBeInstanceOf(TaskNotFoundError);
    expect(() => producer.client.watch('nope')).toThrow(InvalidArgumentError);
  });

  it('completes at once after the snapshot of a task that is already terminal', async () => {
    const { taskId } = await worker.client.spawn('journey', { event: 'x' });
    await worker.client.cancel(taskId);
    const all = await lastValueFrom(producer.client.watch(taskId).pipe(toArray()));
    expect(all.map((s) => s.state)).toEqual(['cancelled']);
  });

  it('releases its timer, its registration and the LISTEN connection on unsubscribe', async () => {
    const hub = (producer.client as unknown as { watches: { size: { tasks: number }; timer?: unknown } }).watches;
    const { taskId } = await producer.client.spawn(QuickTask, { n: 1 });
    await eventually(async () => (await listeners(sql, db.name)) === 1, 10_000, 'only the worker app to listen');
    const snapshots: TaskSnapshot[] = [];
    const subscription = producer.client.watch(taskId).subscribe((s) => snapshots.push(s));
    await eventually(async () => snapshots.length === 1, 10_000, 'the first snapshot');
    await eventually(async () => (await listeners(sql, db.name)) === 2, 10_000, 'the producer to listen');
    expect((await sql.query(`select count(*)::int as n from durable.watches where task_id = $1`, [taskId])).rows[0].n).toBe(1);
    expect(hub.timer).toBeDefined();
    subscription.unsubscribe();
    expect(hub.size.tasks).toBe(0);
    expect(hub.timer).toBeUndefined();
    await eventually(async () => (await listeners(sql, db.name)) === 1, 10_000, 'the producer\'s LISTEN connection to close');
    // Within the query timeout (20 s) and a retry: on a loaded CI machine one statement can stall.
    await eventually(
      async () => (await sql.query(`select count(*)::int as n from durable.watches`)).rows[0].n === 0, 30_000, 'the registration to go',
    );
  });

  it('removes the registration of a watcher that leaves while its renewal is queued (after a reconnect)', async () => {
    const hub = producer.client as unknown as { watches: { notified(n: undefined): void } };
    const { taskId } = await producer.client.spawn(QuickTask, { n: 2 });
    const snapshots: TaskSnapshot[] = [];
    const subscription = producer.client.watch(taskId).subscribe((s) => snapshots.push(s));
    await eventually(async () => snapshots.length === 1, 10_000, 'the first snapshot');
    const registered = async () => (await sql.query(`select count(*)::int as n from durable.watches where task_id = $1`, [taskId])).rows[0].n;
    expect(await registered()).toBe(1);
    // What the notifier does on (re)connecting: every watched id is queued for registration again.
    hub.watches.notified(undefined);
    subscription.unsubscribe();
    // Well before the registration's 60 s expiry.
    await eventually(async () => (await registered()) === 0, 10_000, 'the registration to go');
  });

  it('serves 1,000 watchers in a producer-only process with one LISTEN connection and one poll', async () => {
    const tasks = await Promise.all(Array.from({ length: 500 }, (_v, n) => producer.client.spawn(QuickTask, { n })));
    const completed: TaskSnapshot[] = [];
    const subscriptions: Subscription[] = [];
    const finished = tasks.flatMap(({ taskId }) => [0, 1].map(() => new Promise<void>((resolve, reject) => {
      subscriptions.push(producer.client.watch(taskId).subscribe({
        next: (s) => s.state === 'completed' && completed.push(s), error: reject, complete: resolve,
      }));
    })));
    await eventually(async () => (await sql.query(`select count(*)::int as n from durable.watches`)).rows[0].n === 500, 30_000, 'registrations');
    // The worker app's and the producer's: the producer's opens with the first watch, and may
    // still be connecting when the registrations (written by the poll) are in.
    await eventually(async () => (await listeners(sql, db.name)) === 2, 10_000, 'the producer to listen');
    expect(await listeners(sql, db.name)).toBe(2);
    // One poll a second for all of them: count the producer's statements over three seconds.
    const store = (producer.client as unknown as { store: { query: (...args: unknown[]) => Promise<unknown> } }).store;
    const query = store.query;
    const sent: string[] = [];
    store.query = function (this: unknown, ...args: unknown[]) {
      sent.push((args[0] as { text: string }).text);
      return query.apply(this, args);
    };
    try {
      await pause(3000);
    } finally {
      store.query = query;
    }
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(sent.length).toBeLessThanOrEqual(6); // three polls (a thousand polling watchers would be thousands)
    expect(sent.every((text) => text.includes('from "durable".tasks where id = any('))).toBe(true);
    const parkedWorker = await startApp(db.url, [QuickTask], { worker: { queues: ['parked'], concurrency: 50, pollIntervalMs: 100 } });
    try {
      await Promise.all(finished);
      expect(completed).toHaveLength(1000);
      expect(await listeners(sql, db.name)).toBeGreaterThanOrEqual(2);
    } finally {
      for (const subscription of subscriptions) subscription.unsubscribe();
      await parkedWorker.close();
    }
  });

  it('catches up on changes whose notification was lost: after its LISTEN connection was killed, and by the poll', async () => {
    const spawnOne = () => producer.client.spawn('journey', { event: 'never' }, { queue: 'default', delayMs: 60_000 });
    const watchOne = (taskId: string) => {
      const seen: string[] = [];
      const done = new Promise<void>((resolve, reject) => {
        producer.client.watch(taskId).subscribe({ next: (s) => seen.push(s.state), error: reject, complete: resolve });
      });
      return { seen, done };
    };
    const cancelBySql = (taskId: string) =>
      sql.query(`update durable.tasks set state = 'cancelled', finished_at = now(), updated_at = now() where id = $1`, [taskId]);

    // 1. Every LISTEN connection killed, then the change: the notification goes nowhere; the
    //    reconnected notifier makes the hub read every watched task again.
    const first = await spawnOne();
    const a = watchOne(first.taskId);
    await eventually(async () => a.seen.length === 1 && (await listeners(sql, db.name)) === 2, 10_000, 'the watcher to listen');
    await sql.query(`
      select pg_terminate_backend(pid) from pg_stat_activity
      where datname = current_database() and ${LISTEN_CONNECTION}`);
    await cancelBySql(first.taskId);
    await a.done;
    expect(a.seen).toEqual(['pending', 'cancelled']);

    // 2. No notification at all (its registration removed behind the hub's back): the poll finds the change.
    const second = await spawnOne();
    const b = watchOne(second.taskId);
    await eventually(async () => b.seen.length === 1, 10_000, 'the first snapshot');
    await sql.query(`delete from durable.watches where task_id = $1`, [second.taskId]);
    await cancelBySql(second.taskId);
    await b.done;
    expect(b.seen).toEqual(['pending', 'cancelled']);
  });

  it('notifies nothing while nothing is watched', async () => {
    const notified: string[] = [];
    const { Client } = (await import('pg')).default;
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      client.on('notification', (n) => notified.push(n.payload ?? ''));
      await client.query('listen durable_watch');
      const { taskId } = await producer.client.spawn('journey', { event: 'never' }, { queue: 'default', delayMs: 60_000 });
      await producer.client.cancel(taskId);
      await pause(300);
      expect(notified).toEqual([]);
      const sub = producer.client.watch(taskId).subscribe();
      await pause(300);
      sub.unsubscribe();
      const other = await producer.client.spawn('journey', { event: 'never' }, { queue: 'default', delayMs: 60_000 });
      const watching = producer.client.watch(other.taskId).subscribe();
      await eventually(async () => (await sql.query(`select 1 from durable.watches where task_id = $1`, [other.taskId])).rowCount === 1, 10_000, 'registration');
      await producer.client.cancel(other.taskId);
      await eventually(async () => notified.includes(other.taskId), 10_000, 'the watched task\'s notification');
      watching.unsubscribe();
    } finally {
      await client.end();
    }
  });
});
