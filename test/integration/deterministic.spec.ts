/**
 * ctx.now(), ctx.random(), ctx.uuid() against a real Postgres: recorded once (a checkpoint of a
 * kind of their own), the same on the retry, fresh per call, and a user step named `now` does
 * not clash with them.
 */
import type pg from 'pg';
import { DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

interface Values {
  nows: string[];
  randoms: number[];
  uuids: string[];
  step: string;
}
const seen: Values[] = [];

@DurableTask({ name: 'values', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 10 } })
class ValuesTask implements DurableTaskHandler<Record<string, never>, Values> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    const values: Values = {
      nows: [(await ctx.now()).toISOString(), (await ctx.now()).toISOString()],
      randoms: [await ctx.random(), await ctx.random()],
      uuids: [await ctx.uuid(), await ctx.uuid()],
      step: await ctx.step('now', () => `user step, attempt ${ctx.attempt}`),
    };
    seen.push(values);
    if (ctx.attempt === 1) throw new Error('retry me');
    return values;
  }
}

describe('deterministic values', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [ValuesTask]);
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('are recorded once, equal across a retry, fresh per call, and apart from user steps', async () => {
    const before = Date.now();
    const { taskId } = await t.client.spawn(ValuesTask, {});
    const result = await t.client.awaitResult<Values>(taskId, { timeoutMs: 20_000 });
    expect((await t.client.getTask(taskId))?.attempts).toBe(2);
    expect(seen).toHaveLength(2);
    expect(seen[1]).toEqual(seen[0]);
    expect(result).toEqual(seen[0]);
    expect(result.step).toBe('user step, attempt 1');

    const [first, second] = result.nows.map((iso) => new Date(iso).getTime());
    expect(first).toBeGreaterThanOrEqual(before - 5_000);
    expect(second).toBeGreaterThanOrEqual(first);
    expect(result.nows[0]).not.toBe(result.nows[1]);
    expect(result.randoms[0]).not.toBe(result.randoms[1]);
    for (const r of result.randoms) expect(r >= 0 && r < 1).toBe(true);
    expect(result.uuids[0]).not.toBe(result.uuids[1]);
    for (const u of result.uuids) expect(u).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const names = (await pool.query(`select name from durable.checkpoints where task_id = $1 order by name`, [taskId])).rows.map((row) => row.name);
    expect(names).toEqual(['step:now', 'value:now', 'value:now#2', 'value:random', 'value:random#2', 'value:uuid', 'value:uuid#2']);
  });
});
