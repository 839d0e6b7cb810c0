/**
 * A worker slot frees when its handler settles, while the handler's outcome is still being
 * written: the next handler starts during that round trip. The outcomes being written are
 * bounded too (at most `concurrency` of them), so a database that stalls on them stops the
 * claiming instead of piling up runs. The outcome writes are stalled here by a row lock another
 * connection holds on the task.
 */
import type pg from 'pg';
import { DurableTask, DurableWorkerMonitor, type DurableTaskHandler } from '../../lib/index.js';
import { eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const started: string[] = [];
const gates = new Map<string, () => void>();

@DurableTask({ name: 'gated' })
class GatedTask implements DurableTaskHandler<{ key: string }, string> {
  async run({ key }: { key: string }) {
    await new Promise<void>((resolve) => {
      gates.set(key, resolve);
      started.push(key);
    });
    return key;
  }
}

describe('worker slots', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [GatedTask], { worker: { concurrency: 1 } });
  });
  afterAll(async () => {
    for (const open of gates.values()) open();
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  const stateOf = async (taskId: string) => (await t.client.getTask(taskId))?.state;

  it('starts the next handler while the last outcome is written, and holds at most concurrency outcomes', async () => {
    const ids: Record<string, string> = {};
    for (const key of ['a', 'b', 'c']) ids[key] = (await t.client.spawn(GatedTask, { key })).taskId;
    await eventually(() => started.length === 1, 10_000, 'the first handler');
    expect(started).toEqual(['a']);

    const locker = await pool.connect();
    try {
      await locker.query('begin');
      await locker.query('select 1 from durable.tasks where id = $1 for update', [ids.a]);
      gates.get('a')!();
      // a's completion waits for the lock, and b runs in the slot a's handler left.
      await eventually(() => started.length === 2, 10_000, "the second handler while a's completion waits");
      expect(started).toEqual(['a', 'b']);
      expect(await stateOf(ids.a)).toBe('running');

      await locker.query('select 1 from durable.tasks where id = $1 for update', [ids.b]);
      gates.get('b')!();
      await eventually(() => t.app.get(DurableWorkerMonitor).status().inFlight === 0, 10_000, "b's handler to settle");
      // Two outcomes on their way with concurrency 1: no claim until one of them is written.
      await sleep(1000);
      expect(started).toEqual(['a', 'b']);
      expect(await stateOf(ids.c)).toBe('pending');
      await locker.query('commit');
    } finally {
      await locker.query('rollback').catch(() => undefined);
      locker.release();
    }

    await eventually(() => started.length === 3, 10_000, 'the third handler after the outcomes were written');
    gates.get('c')!();
    for (const key of ['a', 'b', 'c']) {
      await expect(t.client.awaitResult(ids[key], { timeoutMs: 10_000 })).resolves.toBe(key);
    }
  });
});
