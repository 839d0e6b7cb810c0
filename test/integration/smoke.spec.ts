import { DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

@DurableTask({ name: 'hello' })
class HelloTask implements DurableTaskHandler<{ who: string }, { greeting: string }> {
  async run(params: { who: string }, ctx: TaskContext) {
    const a = await ctx.step('a', () => `hello ${params.who}`);
    await ctx.sleepFor('nap', 50);
    const payload = await ctx.awaitEvent<{ n: number }>('go', { timeoutMs: 5000 });
    return { greeting: `${a} ${payload.n}` };
  }
}

describe('smoke', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [HelloTask]);
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
  });

  it('runs a task end to end', async () => {
    const spawned = await t.client.spawn(HelloTask, { who: 'world' });
    setTimeout(() => void t.client.emitEvent('go', { n: 7 }), 300);
    await expect(t.client.awaitResult(spawned.taskId, { timeoutMs: 5000 })).resolves.toEqual({ greeting: 'hello world 7' });
    const snapshot = await t.client.getTask(spawned.taskId);
    expect(snapshot).toMatchObject({ state: 'completed', attempts: 1 });
  });
});
