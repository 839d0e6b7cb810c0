/**
 * A spawn stores the retry strategy and cancellation policy it checked (issue 13, item 4): a
 * strategy whose toJSON says `factor: 0` used to be stored as such and broke the recording of
 * every failure of that task (`cannot take logarithm of zero`); now the checked value is stored
 * and the task is retried and completes.
 */
import type pg from 'pg';
import type { RetryStrategy, TaskContext } from '../../lib/index.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { durableTask } from '../helpers/durable-task.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const FlakyTask = durableTask('FlakyTask', { name: 'stored-policy-flaky' }, (_params: unknown, ctx: TaskContext) => {
  if (ctx.attempt === 1) throw new Error('first attempt fails');
  return { attempt: ctx.attempt };
});

let db: TestDatabase;
let sql: pg.Pool;
let t: DurableTestApp | undefined;
beforeAll(async () => {
  db = await createTestDatabase();
  sql = sqlPool(db.url);
  t = await startApp(db.url, [FlakyTask]);
});
afterAll(async () => {
  await t?.close();
  await sql?.end();
  await db?.drop();
});

it('a retry whose toJSON differs from its fields: the checked value is stored, and the task is retried and completes', async () => {
  const retry = {
    kind: 'exponential', baseDelayMs: 10, factor: 2,
    toJSON: () => ({ kind: 'exponential', baseDelayMs: 1000, factor: 0 }),
  } as RetryStrategy;
  const cancellation = { maxDurationMs: 60_000, toJSON: () => ({ maxDurationMs: 'later' }) } as unknown as { maxDurationMs: number };
  const { taskId } = await t!.client.spawn(FlakyTask, {}, { retry, cancellation });
  const { rows } = await sql.query(`select retry::text as retry, cancellation::text as cancellation from durable.tasks where id = $1`, [taskId]);
  expect(JSON.parse(rows[0].retry)).toEqual({ kind: 'exponential', baseDelayMs: 10, factor: 2 });
  expect(JSON.parse(rows[0].cancellation)).toEqual({ maxDurationMs: 60_000 });
  await expect(t!.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ attempt: 2 });
});
