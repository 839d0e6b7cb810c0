/**
 * client.stats against a real Postgres: counts per queue and state that follow every
 * transition (spawn, claim, sleep, completion, failure, cancellation, retry, cleanup, dropQueue),
 * checked against a count(*) of the tasks table; the oldest due pending task's wait; one queue;
 * an unknown queue; bad input.
 */
import type pg from 'pg';
import {
  DurableTask, InvalidArgumentError, NonRetryableError, type DurableTaskHandler, type QueueStats, type TaskContext,
} from '../../lib/index.js';
import { eventually, sleep as pause, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

@DurableTask({ name: 'outcome', queue: 'work' })
class OutcomeTask implements DurableTaskHandler<{ outcome: 'complete' | 'fail' | 'sleep' }, string> {
  async run(params: { outcome: 'complete' | 'fail' | 'sleep' }, ctx: TaskContext) {
    if (params.outcome === 'fail') throw new NonRetryableError('no');
    if (params.outcome === 'sleep') await ctx.sleepFor('long', 3_600_000);
    return params.outcome;
  }
}

/** The same figures from a scan of the tables (the reference). */
async function scanned(sql: pg.Pool): Promise<Map<string, Record<string, number>>> {
  const { rows } = await sql.query<{ queue: string; state: string; n: number }>(
    `select queue, state, count(*)::int as n from durable.tasks group by queue, state`,
  );
  const byQueue = new Map<string, Record<string, number>>();
  for (const row of rows) {
    const counts = byQueue.get(row.queue) ?? { pending: 0, running: 0, sleeping: 0, completed: 0, failed: 0, cancelled: 0 };
    counts[row.state] = row.n;
    byQueue.set(row.queue, counts);
  }
  return byQueue;
}

const counts = ({ oldestPendingAgeMs: _age, queue: _queue, ...rest }: QueueStats) => rest;

describe('client.stats', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let sql: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    t = await startApp(db.url, [OutcomeTask], { worker: { queues: ['work'], pollIntervalMs: 50 } });
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  async function expectMatchesScan(): Promise<QueueStats[]> {
    const stats = await t.client.stats();
    const reference = await scanned(sql);
    for (const [queue, expected] of reference) {
      expect(counts(stats.find((s) => s.queue === queue)!)).toEqual(expected);
    }
    for (const s of stats) if (!reference.has(s.queue)) expect(Object.values(counts(s)).every((n) => n === 0)).toBe(true);
    return stats;
  }

  it('counts each queue\'s tasks by state through every transition, as a scan of the table does', async () => {
    const parked = await Promise.all(Array.from({ length: 30 }, (_v, n) => t.client.spawn('anything', { n }, { queue: 'parked' })));
    await t.client.spawn('later', {}, { queue: 'parked', delayMs: 3_600_000 });
    const outcomes = ['complete', 'complete', 'complete', 'fail', 'fail', 'sleep'] as const;
    const work = await Promise.all(outcomes.map((outcome) => t.client.spawn(OutcomeTask, { outcome })));
    await eventually(async () => {
      const states = await Promise.all(work.map(({ taskId }) => t.client.getTask(taskId)));
      return states.every((s) => ['completed', 'failed', 'sleeping'].includes(s!.state));
    }, 15_000, 'the work to settle');
    await t.client.cancel(parked[0].taskId);
    await t.client.cancel(parked[1].taskId);
    await t.client.retry(parked[1].taskId);
    const stats = await expectMatchesScan();
    expect(counts(stats.find((s) => s.queue === 'parked')!)).toEqual({ pending: 30, running: 0, sleeping: 0, completed: 0, failed: 0, cancelled: 1 });
    expect(counts(stats.find((s) => s.queue === 'work')!)).toEqual({ pending: 0, running: 0, sleeping: 1, completed: 3, failed: 2, cancelled: 0 });

    await pause(1100); // cleanup counts from the end of the task (whole seconds are enough here)
    expect(await t.client.cleanup({ queue: 'work', olderThanMs: 1000 })).toBe(5);
    await expectMatchesScan();
    await t.client.dropQueue('parked');
    const after = await expectMatchesScan();
    expect(after.find((s) => s.queue === 'parked')).toBeUndefined();
  });

  it('says how long the oldest due pending task has waited, and null when none waits', async () => {
    await t.client.spawn('anything', {}, { queue: 'waiting' });
    await t.client.spawn('delayed', {}, { queue: 'delayed-only', delayMs: 3_600_000 });
    await pause(300);
    const [waiting] = await t.client.stats({ queue: 'waiting' });
    expect(waiting.queue).toBe('waiting');
    expect(waiting.pending).toBe(1);
    expect(waiting.oldestPendingAgeMs).toBeGreaterThanOrEqual(250);
    expect(waiting.oldestPendingAgeMs).toBeLessThan(60_000);
    const [delayed] = await t.client.stats({ queue: 'delayed-only' });
    expect(delayed).toEqual({ queue: 'delayed-only', pending: 1, running: 0, sleeping: 0, completed: 0, failed: 0, cancelled: 0, oldestPendingAgeMs: null });
  });

  it('finds the oldest due pending task at whatever priority it has (here a lower one than the queue\'s highest)', async () => {
    // Due since: priority 9, in an hour (not due); 5, 1 minute; 0, 10 minutes (the oldest); -3, 2 minutes.
    const dueSince: [number, number][] = [[9, -60], [5, 1], [0, 10], [-3, 2]];
    for (const [priority, minutesAgo] of dueSince) {
      const { taskId } = await t.client.spawn('anything', {}, { queue: 'ranked', priority });
      await sql.query(`update durable.runs set available_at = now() - $2 * interval '1 minute' where task_id = $1`, [taskId, minutesAgo]);
    }
    const [ranked] = await t.client.stats({ queue: 'ranked' });
    expect(ranked.pending).toBe(4);
    expect(ranked.oldestPendingAgeMs).toBeGreaterThanOrEqual(10 * 60_000);
    expect(ranked.oldestPendingAgeMs).toBeLessThan(11 * 60_000);
    // With the 0 task started (no longer pending), the -3 one is the oldest.
    await sql.query(`update durable.runs set state = 'running' where queue = 'ranked' and priority = 0`);
    const [after] = await t.client.stats({ queue: 'ranked' });
    expect(after.oldestPendingAgeMs).toBeGreaterThanOrEqual(2 * 60_000);
    expect(after.oldestPendingAgeMs).toBeLessThan(3 * 60_000);
  });

  it('reports an unknown queue with zeros, lists queues without tasks, and refuses a bad name', async () => {
    expect(await t.client.stats({ queue: 'nobody-here' })).toEqual([
      { queue: 'nobody-here', pending: 0, running: 0, sleeping: 0, completed: 0, failed: 0, cancelled: 0, oldestPendingAgeMs: null },
    ]);
    await t.client.createQueue('empty-queue');
    expect((await t.client.stats()).map((s) => s.queue)).toContain('empty-queue');
    await expect(t.client.stats({ queue: '' })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('keeps the counts right across the folding of the deltas and a truncate', async () => {
    for (let i = 0; i < 5; i++) await t.client.spawn('anything', {}, { queue: 'fold' }); // a delta row each
    expect((await sql.query(`select count(*)::int as n from durable.task_counts where queue = 'fold'`)).rows[0].n).toBeGreaterThan(1);
    await t.client.stats();
    // After a fold: one row per queue and state.
    const rows = await sql.query(`select queue, state, count(*)::int as n from durable.task_counts group by 1, 2 having count(*) > 1`);
    expect(rows.rows).toEqual([]);
    await expectMatchesScan();
    await sql.query(`truncate durable.tasks cascade`);
    expect((await t.client.stats()).every((s) => Object.values(counts(s)).every((n) => n === 0))).toBe(true);
  });
});
