/**
 * A worker polling several queues gives each a fair share of its free slots (issue 13, item 7):
 * with every queue full, each makes progress from the first claim on, instead of the first queue
 * being drained before the next is looked at.
 */
import { DurableClient, DurableTask, DurableWorkerMonitor, type DurableLogger, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };
let release: () => void = () => undefined;
const released = new Promise<void>((resolve) => (release = resolve));

@DurableTask({ name: 'fair', queue: 'fair-a' })
class FairA implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    await released;
    return ctx.queue;
  }
}

@DurableTask({ name: 'fair', queue: 'fair-b' })
class FairB implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    await released;
    return ctx.queue;
  }
}

@DurableTask({ name: 'fair', queue: 'fair-c' })
class FairC implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    await released;
    return ctx.queue;
  }
}

describe('fair share between the queues of one worker', () => {
  let db: TestDatabase;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    release();
    await t?.close();
    await db?.drop();
  });

  it('claims from every full queue in the first claim, and runs them all', async () => {
    const producer = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
    const ids: string[] = [];
    try {
      for (const queue of ['fair-a', 'fair-b', 'fair-c']) {
        for (let i = 0; i < 10; i++) ids.push((await producer.spawn('fair', { i }, { queue })).taskId);
      }
    } finally {
      await producer.close();
    }

    t = await startApp(db.url, [FairA, FairB, FairC], { worker: { queues: ['fair-a', 'fair-b', 'fair-c'], concurrency: 6 } });
    const monitor = t.app.get(DurableWorkerMonitor);
    await eventually(() => monitor.status().inFlight === 6, 10_000, 'the first claim to fill the worker');
    // The handlers wait, so the running runs are those of the first claim.
    const sql = sqlPool(db.url);
    try {
      const { rows } = await sql.query(`select queue, count(*)::int as n from durable.runs where state = 'running' group by queue order by queue`);
      expect(rows).toEqual([{ queue: 'fair-a', n: 2 }, { queue: 'fair-b', n: 2 }, { queue: 'fair-c', n: 2 }]);
    } finally {
      await sql.end();
    }

    release();
    for (const id of ids) await t.client.awaitResult(id, { timeoutMs: 15_000 });
  });
});
