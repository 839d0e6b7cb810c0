/**
 * Flow control (issue 15): concurrency limits (per name and per key) held by the database
 * across several apps, rate limits (no window of perMs with more than max starts, and the claim
 * says when the window opens), priorities, RetryAfterError, and bad input refused before
 * anything is written.
 */
import { Test } from '@nestjs/testing';
import {
  DurableClient, DurableModule, InvalidArgumentError, RetryAfterError, type DurableLogger,
} from '../../lib/index.js';
import { durableTask } from '../helpers/durable-task.js';
import { eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };

/** In flight now and at most, measured from inside the handlers of every app of this process. */
class Gauge {
  now = 0;
  max = 0;
  private readonly byKey = new Map<string, number>();
  maxByKey = new Map<string, number>();
  enter(key = ''): void {
    this.now += 1;
    this.max = Math.max(this.max, this.now);
    const k = (this.byKey.get(key) ?? 0) + 1;
    this.byKey.set(key, k);
    this.maxByKey.set(key, Math.max(this.maxByKey.get(key) ?? 0, k));
  }
  leave(key = ''): void {
    this.now -= 1;
    this.byKey.set(key, this.byKey.get(key)! - 1);
  }
}

const limited = new Gauge();
const Limited = durableTask<{ i: number }, number>('Limited', { name: 'limited', concurrency: 3 }, async ({ i }) => {
  limited.enter();
  await sleep(30 + (i % 4) * 10);
  limited.leave();
  return i;
});
const perKey = new Gauge();
const PerKey = durableTask<{ key: string }, void>('PerKey', { name: 'per-key', concurrency: 1 }, async ({ key }) => {
  perKey.enter(key);
  await sleep(60);
  perKey.leave(key);
});
const napping = new Gauge();
const Napper = durableTask<unknown, void>('Napper', { name: 'napper', concurrency: 1 }, async (_params, ctx) => {
  await ctx.step('work', async () => {
    napping.enter();
    await sleep(50);
    napping.leave();
  });
  await ctx.sleepFor('nap', 500);
});
const Rated = durableTask<{ i: number }, number>('Rated', { name: 'rated', rateLimit: { max: 3, perMs: 600 } }, ({ i }) => i);
// A window with room for several claims, in a queue of rates alone: most are claimed by the shortcut of migration 0016.
const RatedWide = durableTask<{ i: number }, number>('RatedWide', { name: 'rated-wide', queue: 'wide', rateLimit: { max: 30, perMs: 500 } }, ({ i }) => i);
const order: number[] = [];
const Prioritised = durableTask<{ n: number }, void>('Prioritised', { name: 'prioritised', queue: 'prio' }, ({ n }) => {
  order.push(n);
});
let retryAfterCalls = 0;
const RetriesAfter = durableTask<{ ms?: number; at?: string }, string>(
  'RetriesAfter', { name: 'retries-after', retry: { kind: 'fixed', delayMs: 10 }, maxAttempts: 3 },
  (params, ctx) => {
    retryAfterCalls += 1;
    if (ctx.attempt === 1) throw new RetryAfterError(params.at ? new Date(params.at) : params.ms!, 'upstream said wait');
    return `done on ${ctx.attempt}`;
  },
);
const AlwaysLater = durableTask('AlwaysLater', { name: 'always-later', maxAttempts: 2 }, () => {
  throw new RetryAfterError(50);
});

/**
 * Samples, every few ms until stopped, the most tasks `running` at once in the database: of one
 * name, per concurrency key. (Not from the runs' start and finish times: those are the times the
 * statements began, not when they committed, so they can overlap by a hair where the claims did not.)
 */
function sampleRunning(url: string, name: string): { stop(): Promise<number> } {
  const sql = sqlPool(url);
  let max = 0;
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const { rows } = await sql.query(`
        select coalesce(max(n), 0)::int as n from (
          select count(*) as n from durable.tasks where name = $1 and state = 'running' group by concurrency_key) x`, [name]);
      max = Math.max(max, rows[0].n as number);
      await sleep(3);
    }
  })();
  return {
    async stop() {
      sampling = false;
      await loop;
      await sql.end();
      return max;
    },
  };
}

describe('flow control', () => {
  let db: TestDatabase;
  const apps: DurableTestApp[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  it('a concurrency limit holds across two apps (measured in the handlers and in the database)', async () => {
    for (let n = 0; n < 2; n++) {
      apps.push(await startApp(db.url, [Limited, PerKey, Rated, RatedWide, RetriesAfter, AlwaysLater, Napper], { worker: { concurrency: 10, pollIntervalMs: 100, queues: ['default', 'wide'] } }));
    }
    const sampler = sampleRunning(db.url, 'limited');
    let dbMax: number;
    try {
      const ids = [];
      for (let i = 0; i < 30; i++) ids.push((await apps[i % 2].client.spawn('limited', { i })).taskId);
      for (const id of ids) await apps[0].client.awaitResult(id, { timeoutMs: 30_000 });
    } finally {
      dbMax = await sampler.stop();
    }
    // 20 free slots between the two apps: without the limit far more would run at once.
    expect(limited.max).toBe(3);
    expect(dbMax).toBeLessThanOrEqual(3);
    expect(dbMax).toBeGreaterThanOrEqual(2);
  });

  it('a per-key limit holds for each key while different keys run in parallel', async () => {
    const sampler = sampleRunning(db.url, 'per-key');
    let dbMax: number;
    try {
      const ids = [];
      for (let i = 0; i < 12; i++) {
        const key = ['a', 'b', 'c'][i % 3];
        ids.push((await apps[i % 2].client.spawn('per-key', { key }, { concurrencyKey: key })).taskId);
      }
      for (const id of ids) await apps[0].client.awaitResult(id, { timeoutMs: 30_000 });
    } finally {
      dbMax = await sampler.stop();
    }
    expect([...perKey.maxByKey.values()]).toEqual([1, 1, 1]);
    expect(perKey.max).toBeGreaterThanOrEqual(2);
    expect(dbMax).toBe(1);
  });

  it('sleeping tasks do not count: a limit of 1 starts the next task while the first sleeps', async () => {
    const sampler = sampleRunning(db.url, 'napper');
    let dbMax: number;
    try {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await apps[i % 2].client.spawn('napper', {})).taskId);
      for (const id of ids) await apps[0].client.awaitResult(id, { timeoutMs: 30_000 });
    } finally {
      dbMax = await sampler.stop();
    }
    expect(napping.max).toBe(1);
    expect(dbMax).toBe(1);
    const sql = sqlPool(db.url);
    try {
      // All three started before the first finished: each slept without holding the one slot.
      const { rows } = await sql.query(`
        select max(first_started_at) < min(finished_at) as overlapped from durable.tasks where name = 'napper'`);
      expect(rows[0].overlapped).toBe(true);
    } finally {
      await sql.end();
    }
  });

  /**
   * Spawns n tasks of a rate-limited name across the two apps and waits for them: the last starts
   * no sooner than the whole windows the first starts fill, and no window of perMs holds more
   * than max starts (by their first_started_at, the claim's clock).
   */
  const drainsWithinWindows = async (name: string, n: number, { max, perMs }: { max: number; perMs: number }) => {
    const started = Date.now();
    const ids = [];
    for (let i = 0; i < n; i++) ids.push((await apps[i % 2].client.spawn(name, { i })).taskId);
    for (const id of ids) await apps[0].client.awaitResult(id, { timeoutMs: 30_000 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(Math.floor((n - 1) / max) * perMs);
    const sql = sqlPool(db.url);
    try {
      const { rows } = await sql.query(`
        select (extract(epoch from first_started_at) * 1e6)::bigint as us from durable.tasks
        where name = $1 order by first_started_at`, [name]);
      const starts = rows.map((row) => Number(row.us));
      expect(starts).toHaveLength(n);
      for (let i = 0; i + max < starts.length; i++) expect(starts[i + max] - starts[i]).toBeGreaterThanOrEqual(perMs * 1000);
    } finally {
      await sql.end();
    }
  };

  it('no window of perMs holds more than max starts, across two apps', async () => {
    // 10 starts at 3 per 600 ms: the 10th no sooner than 3 windows after the first.
    await drainsWithinWindows('rated', 10, { max: 3, perMs: 600 });
  });

  it('no window holds more than max starts when it has room for several claims, across two apps', async () => {
    // 90 starts at 30 per 500 ms: the last no sooner than two windows after the first.
    await drainsWithinWindows('rated-wide', 90, { max: 30, perMs: 500 });
  });

  it('RetryAfterError sets the next attempt\'s start (a delay or a Date) and still counts an attempt', async () => {
    const client = apps[0].client;
    const byDelay = await client.spawn('retries-after', { ms: 700 });
    const byDate = await client.spawn('retries-after', { at: new Date(Date.now() + 900).toISOString() });
    expect(await client.awaitResult(byDelay.taskId, { timeoutMs: 10_000 })).toBe('done on 2');
    expect(await client.awaitResult(byDate.taskId, { timeoutMs: 10_000 })).toBe('done on 2');
    const sql = sqlPool(db.url);
    try {
      const { rows } = await sql.query(`
        select extract(epoch from (r2.available_at - r1.finished_at)) * 1000 as gap_ms, r1.error->>'name' as name,
          r1.error->>'message' as message
        from durable.runs r1 join durable.runs r2 on r2.task_id = r1.task_id and r2.attempt = 2
        where r1.task_id = $1 and r1.attempt = 1`, [byDelay.taskId]);
      expect(rows[0].name).toBe('RetryAfterError');
      expect(rows[0].message).toBe('upstream said wait');
      // Not the strategy's 10 ms: the error's 700.
      expect(Number(rows[0].gap_ms)).toBeGreaterThanOrEqual(699);
      expect(Number(rows[0].gap_ms)).toBeLessThan(800);
      const { rows: dated } = await sql.query(`
        select r2.available_at >= r1.finished_at + interval '300 milliseconds' as later
        from durable.runs r1 join durable.runs r2 on r2.task_id = r1.task_id and r2.attempt = 2
        where r1.task_id = $1 and r1.attempt = 1`, [byDate.taskId]);
      expect(dated[0].later).toBe(true);
    } finally {
      await sql.end();
    }
    const always = await client.spawn('always-later', {});
    await expect(client.awaitResult(always.taskId, { timeoutMs: 10_000 })).rejects.toMatchObject({ name: 'TaskFailedError' });
    const failed = await client.getTask(always.taskId);
    expect(failed?.attempts).toBe(2);
    expect(failed?.error).toMatchObject({ name: 'RetryAfterError', message: 'retry after 50 ms', retryAfterMs: 50 });
    expect(retryAfterCalls).toBe(4);
  });

  it('the claim of a full rate window claims nothing and says when the window opens (no busy polling)', async () => {
    const sql = sqlPool(db.url);
    const producer = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
    try {
      await sql.query(`insert into durable.flow_limits (queue, name, concurrency, rate_max, rate_per_ms, updated_at)
        values ('idle-q', 'burst', null, 2, 5000, now())`);
      for (let i = 0; i < 5; i++) await producer.spawn('burst', { i }, { queue: 'idle-q' });
      const claim = `select run_id, next_due_at, db_now from durable.claim_tasks(array['idle-q'], 'probe', 10, 60000)`;
      const first = await sql.query(claim);
      expect(first.rows.filter((row) => row.run_id !== null)).toHaveLength(2);
      const second = await sql.query(claim);
      expect(second.rows).toHaveLength(1);
      const [{ run_id: none, next_due_at: due, db_now: now }] = second.rows as { run_id: null; next_due_at: Date; db_now: Date }[];
      expect(none).toBeNull();
      const waitMs = due.getTime() - now.getTime();
      expect(waitMs).toBeGreaterThan(4000);
      expect(waitMs).toBeLessThanOrEqual(5000);
    } finally {
      await producer.close();
      await sql.end();
    }
  });

  it('priority: higher first, equal priorities in spawn order', async () => {
    const producer = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
    const priorities = [0, 5, -1, 5, 10, 0, -1, 10];
    const ids = [];
    try {
      for (const [n, priority] of priorities.entries()) ids.push((await producer.spawn('prioritised', { n }, { queue: 'prio', priority })).taskId);
    } finally {
      await producer.close();
    }
    const t = await startApp(db.url, [Prioritised], { queue: 'prio', worker: { concurrency: 1 } });
    apps.push(t);
    for (const id of ids) await t.client.awaitResult(id, { timeoutMs: 10_000 });
    expect(order).toEqual([4, 7, 1, 3, 0, 5, 2, 6]);
  });

  it('refuses a bad priority, concurrencyKey or limit, and writes nothing', async () => {
    const client = apps[0].client;
    const sql = sqlPool(db.url);
    try {
      const before = (await sql.query(`select count(*)::int as n from durable.tasks`)).rows[0].n;
      for (const options of [{ priority: 1.5 }, { priority: Number.NaN }, { priority: 2 ** 31 }, { concurrencyKey: '' }, { concurrencyKey: 'a\u0000b' }]) {
        await expect(client.spawn('limited', { i: 0 }, options)).rejects.toThrow(InvalidArgumentError);
      }
      expect((await sql.query(`select count(*)::int as n from durable.tasks`)).rows[0].n).toBe(before);
      for (const [options, field] of [
        [{ concurrency: -1 }, 'concurrency'], [{ concurrency: 0 }, 'concurrency'], [{ rateLimit: { max: 0, perMs: 10 } }, 'rateLimit.max'],
        [{ rateLimit: { max: 1, perMs: -5 } }, 'rateLimit.perMs'], [{ schedule: { cron: 'every day' } }, 'cron'],
      ] as const) {
        const Bad = durableTask('BadLimits', { name: 'bad-limits', ...options });
        const moduleRef = await Test.createTestingModule({
          imports: [DurableModule.forRoot({ databaseUrl: db.url, worker: { concurrency: 1 } })], providers: [Bad],
        }).compile();
        moduleRef.useLogger(false);
        const error = await moduleRef.init().then(() => null, (e: unknown) => e);
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect((error as Error).message).toContain('BadLimits');
        expect((error as Error).message).toContain(field);
      }
      const { rows } = await sql.query(`select count(*)::int as n from durable.flow_limits where name = 'bad-limits'`);
      expect(rows[0].n).toBe(0);
    } finally {
      await sql.end();
    }
  });

  it('a worker that starts without a limit removes it; the limits of a name live in the database', async () => {
    const sql = sqlPool(db.url);
    try {
      const { rows } = await sql.query(`select name, concurrency, rate_max, rate_per_ms from durable.flow_limits where queue = 'default' order by name`);
      expect(rows).toEqual([
        { name: 'limited', concurrency: 3, rate_max: null, rate_per_ms: null },
        { name: 'napper', concurrency: 1, rate_max: null, rate_per_ms: null },
        { name: 'per-key', concurrency: 1, rate_max: null, rate_per_ms: null },
        { name: 'rated', concurrency: null, rate_max: 3, rate_per_ms: 600 },
      ]);
      const Unlimited = durableTask('Unlimited', { name: 'limited' });
      const t = await startApp(db.url, [Unlimited], { worker: { concurrency: 1 } });
      await t.close();
      await eventually(async () => (await sql.query(`select 1 from durable.flow_limits where name = 'limited'`)).rows.length === 0,
        5000, 'the limit to be removed');
    } finally {
      await sql.end();
    }
  });
});
