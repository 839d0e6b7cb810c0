/**
 * Schedules (issue 15): one task per tick however many workers fire them, the tick time in the
 * task's headers, schedules made and removed at run time, missed ticks (only the latest is
 * spawned), no replay after a restart, and bad input refused before anything is written.
 */
import { DurableClient, InvalidArgumentError, type DurableLogger } from '../../lib/index.js';
import { durableTask } from '../helpers/durable-task.js';
import { advanceClock, eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };
const seen: { scheduledFor: unknown; params: unknown }[] = [];
const EverySecond = durableTask<unknown, void>('EverySecond', {
  name: 'every-second', schedule: { cron: '* * * * * *', params: { from: 'decorator' } },
}, (params, ctx) => {
  seen.push({ scheduledFor: ctx.headers['durable.scheduledFor'], params });
});
const Runtime = durableTask('Runtime', { name: 'runtime-task' });
const Hourly = durableTask('Hourly', { name: 'hourly', queue: 'minutes' });

async function scheduledFor(url: string, name: string): Promise<string[]> {
  const sql = sqlPool(url);
  try {
    const { rows } = await sql.query(`select headers->>'durable.scheduledFor' as at from durable.tasks where name = $1 order by 1`, [name]);
    return rows.map((row) => row.at as string);
  } finally {
    await sql.end();
  }
}

describe('schedules', () => {
  let db: TestDatabase;
  const apps: DurableTestApp[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await db?.drop();
  });

  it('three workers spawn exactly one task per every-second tick, with the tick in its headers', async () => {
    for (let n = 0; n < 3; n++) apps.push(await startApp(db.url, [EverySecond, Runtime], { worker: { pollIntervalMs: 100 } }));
    await sleep(6500);
    const ticks = await scheduledFor(db.url, 'every-second');
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks.length).toBeGreaterThanOrEqual(4);
    // Consecutive seconds: none skipped while the workers ran, none twice.
    const seconds = ticks.map((at) => Date.parse(at) / 1000);
    for (const [i, s] of seconds.entries()) {
      expect(Number.isInteger(s)).toBe(true);
      if (i > 0) expect(s - seconds[i - 1]).toBe(1);
    }
    await eventually(() => seen.length >= 4, 5000, 'the scheduled tasks to run');
    expect(seen[0]).toEqual({ scheduledFor: ticks[0], params: { from: 'decorator' } });
    const [info] = (await apps[0].client.listSchedules()).filter((s) => s.name === 'every-second');
    expect(info).toMatchObject({ name: 'every-second', cron: '* * * * * *', taskName: 'every-second', queue: 'default', timezone: 'UTC', params: { from: 'decorator' } });
    expect(info.nextRunAt).toBeInstanceOf(Date);
    await apps[0].client.unschedule('every-second');
  });

  it('schedule() at run time fires, unschedule() stops it', async () => {
    const client = apps[0].client;
    await client.schedule('rt', { cron: '* * * * * *', task: 'runtime-task', params: { n: 1 }, timezone: 'Europe/Paris' });
    await eventually(async () => (await scheduledFor(db.url, 'runtime-task')).length >= 2, 10_000, 'two ticks');
    await client.unschedule('rt');
    const stoppedAt = (await scheduledFor(db.url, 'runtime-task')).length;
    await sleep(2500);
    // At most a tick that was being fired while unschedule ran.
    expect((await scheduledFor(db.url, 'runtime-task')).length - stoppedAt).toBeLessThanOrEqual(1);
    const settled = (await scheduledFor(db.url, 'runtime-task')).length;
    await sleep(1500);
    expect((await scheduledFor(db.url, 'runtime-task')).length).toBe(settled);
    expect((await client.listSchedules()).map((s) => s.name)).not.toContain('rt');
  });

  it('missed ticks: only the latest is spawned when a worker comes; a restart replays nothing', async () => {
    // An hourly tick five minutes behind the clock: no new tick can come while the test runs, so a
    // second task after the restart can only be a replay.
    const sql = sqlPool(db.url);
    try {
      const producer = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
      const { rows: [{ now: before }] } = await sql.query(`select durable.now() as now`);
      const minute = ((before as Date).getUTCMinutes() + 55) % 60;
      try {
        await producer.schedule('hourly', { cron: `${minute} * * * *`, task: 'hourly', queue: 'minutes' });
      } finally {
        await producer.close();
      }
      // Ten hours (ten ticks) pass with no worker on the queue.
      await advanceClock(sql, 10 * 3_600_000);
      const { rows: [{ now }] } = await sql.query(`select durable.now() as now`);
      const turned = Math.floor((now as Date).getTime() / 60_000) * 60_000;
      const latest = new Date(turned - (((now as Date).getUTCMinutes() - minute + 60) % 60) * 60_000).toISOString();
      let t = await startApp(db.url, [Hourly], { queue: 'minutes' });
      await eventually(async () => (await scheduledFor(db.url, 'hourly')).length >= 1, 10_000, 'the latest tick');
      await sleep(500);
      expect(await scheduledFor(db.url, 'hourly')).toEqual([latest]);
      await t.close();
      t = await startApp(db.url, [Hourly], { queue: 'minutes' });
      apps.push(t);
      await sleep(1500);
      expect(await scheduledFor(db.url, 'hourly')).toEqual([latest]);
    } finally {
      await sql.end();
    }
  });

  it('refuses a bad cron, zone or name, and writes nothing', async () => {
    const client = apps[0].client;
    const before = await client.listSchedules();
    for (const [name, options] of [
      ['bad-cron', { cron: 'every minute', task: 'x' }],
      ['seven-fields', { cron: '0 0 0 * * * 2030', task: 'x' }],
      ['four-fields', { cron: '* * * *', task: 'x' }],
      ['bad-minute', { cron: '61 * * * *', task: 'x' }],
      ['never', { cron: '0 0 30 2 *', task: 'x' }],
      ['bad-zone', { cron: '* * * * *', task: 'x', timezone: 'Mars/Olympus_Mons' }],
      ['no-task', { cron: '* * * * *', task: '' }],
      ['', { cron: '* * * * *', task: 'x' }],
    ] as const) {
      await expect(client.schedule(name, options)).rejects.toThrow(InvalidArgumentError);
    }
    expect(await client.listSchedules()).toEqual(before);
  });
});
