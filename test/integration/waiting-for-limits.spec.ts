/**
 * `TaskSnapshot.waitingFor` 'concurrency' and 'rateLimit' against a real Postgres, with a real
 * worker holding the limit: a due task whose concurrency group (name and key) has as many running
 * runs as its limit allows, and a due task whose rate window is full, with the time the window
 * lets it start (the oldest start in the window plus perMs). A task of a held name that is not
 * due yet, or of another key, is not held; getTask and listTasks agree.
 */
import type pg from 'pg';
import type { DurableClient, TaskSnapshot } from '../../lib/index.js';
import { eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { durableTask } from '../helpers/durable-task.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const HOUR = 3_600_000;
const gates: (() => void)[] = [];
const openGates = () => gates.splice(0).forEach((open) => open());

const Gated = durableTask('Gated', { name: 'gated', queue: 'gated', concurrency: 1 }, async () => {
  await new Promise<void>((resolve) => gates.push(resolve));
});
const Metered = durableTask('Metered', { name: 'metered', queue: 'metered', rateLimit: { max: 1, perMs: HOUR } }, () => 'done');

describe('TaskSnapshot.waitingFor under flow limits', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let app: DurableTestApp;
  let client: DurableClient;

  const settled = (taskId: string, state: TaskSnapshot['state']) =>
    eventually(async () => {
      const task = await client.getTask(taskId);
      return task?.state === state && task;
    }, 10_000, `task ${taskId} ${state}`);

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    app = await startApp(db.url, [Gated, Metered], { worker: { queues: ['gated', 'metered'], concurrency: 5, pollIntervalMs: 50 } });
    client = app.client;
  });
  afterAll(async () => {
    openGates();
    await app?.close();
    await sql?.end();
    await db?.drop();
  });

  it('"concurrency" for a due task whose group has as many running as its limit, per concurrency key', async () => {
    const first = await client.spawn('gated', {}, { queue: 'gated', concurrencyKey: 'k1' });
    await settled(first.taskId, 'running');
    const held = await client.spawn('gated', {}, { queue: 'gated', concurrencyKey: 'k1' });
    const otherKey = await client.spawn('gated', {}, { queue: 'gated', concurrencyKey: 'k2' });
    const later = await client.spawn('gated', {}, { queue: 'gated', concurrencyKey: 'k1', delayMs: HOUR });
    await settled(otherKey.taskId, 'running');

    const task = (await client.getTask(held.taskId))!;
    expect(task.state).toBe('pending');
    expect(task.waitingFor).toEqual({
      reason: 'concurrency',
      message: 'held back by the concurrency limit of task "gated": as many are running as it allows',
    });
    expect((await client.getTask(later.taskId))!.waitingFor!.reason).toBe('delayed');
    expect((await client.getTask(otherKey.taskId))!.waitingFor).toBeNull();
    const listed = await client.listTasks({ queue: 'gated', limit: 50 });
    for (const snapshot of listed) expect(snapshot.waitingFor).toEqual((await client.getTask(snapshot.taskId))!.waitingFor);
    expect(listed.find((t) => t.taskId === held.taskId)!.waitingFor!.reason).toBe('concurrency');

    openGates();
    await settled(first.taskId, 'completed');
    // The slot is free: the held task starts (its snapshot no longer says it is held).
    await settled(held.taskId, 'running');
    expect((await client.getTask(held.taskId))!.waitingFor).toBeNull();
    openGates();
    await settled(held.taskId, 'completed');
    await client.cancel(later.taskId);
  });

  it('"rateLimit" for a due task whose rate window is full, until the oldest start leaves the window', async () => {
    const first = await client.spawn('metered', {}, { queue: 'metered' });
    await settled(first.taskId, 'completed');
    const held = await client.spawn('metered', {}, { queue: 'metered' });
    const { rows: [{ started_at: startedAt }] } = await sql.query<{ started_at: Date }>(
      `select min(started_at) as started_at from durable.flow_starts where queue = 'metered' and name = 'metered'`,
    );
    const until = new Date(startedAt.getTime() + HOUR);

    // Give the worker a few polls: it must leave the task pending.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const task = (await client.getTask(held.taskId))!;
    expect(task.state).toBe('pending');
    expect(task.waitingFor).toEqual({
      reason: 'rateLimit',
      message: `held back by the rate limit until ${until.toISOString()}`,
      until,
    });
    const [listed] = await client.listTasks({ queue: 'metered', state: 'pending', limit: 1 });
    expect(listed.waitingFor).toEqual(task.waitingFor);

    // Once the start is out of the window, nothing holds it (and the worker takes it).
    await sql.query(`update durable.flow_starts set started_at = started_at - interval '2 hours' where queue = 'metered'`);
    expect((await client.getTask(held.taskId))!.waitingFor?.reason ?? 'started').not.toBe('rateLimit');
    await settled(held.taskId, 'completed');
  });
});
