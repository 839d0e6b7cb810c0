/**
 * The limited claim (migration 0012) called directly against a real Postgres: which runs one claim
 * takes when several groups, keys and rate-limited names share a queue; one `flow_starts` row
 * per name and claim; two claims of one group in two open transactions never take more than its
 * limit; and a runnable task behind a held backlog larger than one claim's reading budget is
 * still claimed (the hand), without any held task being taken. A queue of rates alone whose
 * windows have room is claimed in one statement (migration 0016): its starts still count, and two
 * open claims still take no more than a window together.
 */
import type pg from 'pg';
import { DurableClient, type DurableLogger } from '../../lib/index.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };

type Claimed = { run_id: string | null; task_id: string | null; queue: string | null; name: string | null; next_due_at: Date | null; db_now: Date };

describe('the limited claim', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let producer: DurableClient;

  beforeAll(async () => {
    db = await createTestDatabase();
    producer = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
    sql = sqlPool(db.url);
  });
  afterAll(async () => {
    await producer?.close();
    await sql?.end();
    await db?.drop();
  });

  const claim = async (queue: string, limit: number, client: pg.Pool | pg.PoolClient = sql): Promise<Claimed[]> =>
    (await client.query<Claimed>(`select * from durable.claim_tasks(array[$1], 'probe', $2, 600000, false)`, [queue, limit])).rows;
  const limits = (queue: string, rows: [string, number | null, number | null, number | null][]) =>
    sql.query(`insert into durable.flow_limits (queue, name, concurrency, rate_max, rate_per_ms, updated_at)
      select $1, x.name, x.concurrency, x.rate_max, x.rate_per_ms, now()
      from json_to_recordset($2::json) x(name text, concurrency int, rate_max int, rate_per_ms float8)`,
    [queue, JSON.stringify(rows.map(([name, concurrency, rateMax, ratePerMs]) => ({ name, concurrency, rate_max: rateMax, rate_per_ms: ratePerMs })))]);

  it('takes, in spawn order, each group\'s first runs up to its room and each rate-limited name\'s up to its window, in one claim', async () => {
    const queue = 'mixed';
    await limits(queue, [['grouped', 2, null, null], ['rated', null, 3, 60_000], ['both', 2, 1, 60_000]]);
    const spawned: { id: string; name: string; key?: string }[] = [];
    for (let i = 0; i < 4; i++) {
      for (const key of ['a', 'b', 'c']) spawned.push({ id: (await producer.spawn('grouped', { i }, { queue, concurrencyKey: key })).taskId, name: 'grouped', key });
      spawned.push({ id: (await producer.spawn('rated', { i }, { queue })).taskId, name: 'rated' });
      if (i < 3) spawned.push({ id: (await producer.spawn('both', { i }, { queue })).taskId, name: 'both' });
      if (i < 2) spawned.push({ id: (await producer.spawn('free', { i }, { queue })).taskId, name: 'free' });
    }
    const taken = new Set((await claim(queue, 100)).filter((row) => row.run_id !== null).map((row) => row.task_id));
    const expected = [
      ...['a', 'b', 'c'].flatMap((key) => spawned.filter((t) => t.key === key).slice(0, 2)),
      ...spawned.filter((t) => t.name === 'rated').slice(0, 3),
      ...spawned.filter((t) => t.name === 'both').slice(0, 1),
      ...spawned.filter((t) => t.name === 'free'),
    ].map((t) => t.id);
    expect([...taken].sort()).toEqual([...expected].sort());
    // One row per rate-limited name for the whole claim.
    const { rows: starts } = await sql.query(`select name, n from durable.flow_starts where queue = $1 order by name`, [queue]);
    expect(starts).toEqual([{ name: 'both', n: 1 }, { name: 'rated', n: 3 }]);
    // Everything left is held: nothing more, and the claim says when to look again (a lease
    // expiry or a window's reopening, both about 60 s away), not at once.
    const again = await claim(queue, 100);
    expect(again.filter((row) => row.run_id !== null)).toEqual([]);
    const waitMs = again[0].next_due_at!.getTime() - again[0].db_now.getTime();
    expect(waitMs).toBeGreaterThan(55_000);
    expect(waitMs).toBeLessThanOrEqual(600_000);
  });

  it('never lets two claims in open transactions take more than a group\'s limit together', async () => {
    const queue = 'two-claims';
    await limits(queue, [['pair', 2, null, null]]);
    // More than A's claim reads (and locks): B sees runs of the group that A did not lock.
    for (let i = 0; i < 40; i++) await producer.spawn('pair', { i }, { queue });
    const [a, b] = [await sql.connect(), await sql.connect()];
    try {
      await a.query('begin');
      await b.query('begin');
      const first = (await claim(queue, 10, a)).filter((row) => row.run_id !== null);
      // The group is being decided by A (its advisory lock): B leaves it alone and looks again shortly.
      const second = await claim(queue, 10, b);
      expect(first).toHaveLength(2);
      expect(second.filter((row) => row.run_id !== null)).toHaveLength(0);
      expect(second[0].next_due_at!.getTime() - second[0].db_now.getTime()).toBeLessThan(1000);
      await a.query('commit');
      await b.query('commit');
      // After A's commit, a claim counts A's two running runs: still nothing.
      await b.query('begin');
      expect((await claim(queue, 10, b)).filter((row) => row.run_id !== null)).toHaveLength(0);
      await b.query('commit');
    } finally {
      a.release();
      b.release();
    }
    const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where queue = $1 and state = 'running'`, [queue]);
    expect(rows[0].n).toBe(2);
  });

  const taken = (rows: Claimed[]) => rows.filter((row) => row.run_id !== null);
  const starts = async (queue: string) =>
    (await sql.query(`select name, sum(n)::int as n, count(*)::int as rows from durable.flow_starts where queue = $1 group by name order by name`, [queue])).rows;

  it('claims a queue of rates alone, each window with room, in spawn order as an unlimited one, recording each name\'s starts', async () => {
    const queue = 'roomy';
    await limits(queue, [['rated-a', null, 100, 60_000], ['rated-b', null, 100, 60_000]]);
    const spawned: string[] = [];
    for (let i = 0; i < 4; i++) {
      for (const name of ['rated-a', 'rated-b', 'free']) spawned.push((await producer.spawn(name, { i }, { queue })).taskId);
    }
    expect(taken(await claim(queue, 10)).map((row) => row.task_id)).toEqual(spawned.slice(0, 10));
    expect(await starts(queue)).toEqual([{ name: 'rated-a', n: 4, rows: 1 }, { name: 'rated-b', n: 3, rows: 1 }]);
    expect(taken(await claim(queue, 10)).map((row) => row.task_id)).toEqual(spawned.slice(10));
    expect(await starts(queue)).toEqual([{ name: 'rated-a', n: 4, rows: 1 }, { name: 'rated-b', n: 4, rows: 2 }]);
  });

  it('holds a window to its room after claims that it had room for: the starts those recorded count', async () => {
    const queue = 'tight';
    await limits(queue, [['tight', null, 5, 60_000]]);
    for (let i = 0; i < 8; i++) await producer.spawn('tight', { i }, { queue });
    expect(taken(await claim(queue, 3))).toHaveLength(3);
    expect(taken(await claim(queue, 10))).toHaveLength(2);
    const again = await claim(queue, 10);
    expect(taken(again)).toHaveLength(0);
    expect(again[0].next_due_at!.getTime() - again[0].db_now.getTime()).toBeGreaterThan(55_000);
    expect(await starts(queue)).toEqual([{ name: 'tight', n: 5, rows: 2 }]);
  });

  it('never lets two claims in open transactions take more than a window together', async () => {
    const queue = 'two-windows';
    await limits(queue, [['paced', null, 5, 60_000]]);
    for (let i = 0; i < 20; i++) await producer.spawn('paced', { i }, { queue });
    const [a, b] = [await sql.connect(), await sql.connect()];
    try {
      await a.query('begin');
      await b.query('begin');
      expect(taken(await claim(queue, 3, a))).toHaveLength(3);
      // A holds the window's lock and its starts are not committed: B takes nothing and looks again shortly.
      const second = await claim(queue, 10, b);
      expect(taken(second)).toHaveLength(0);
      expect(second[0].next_due_at!.getTime() - second[0].db_now.getTime()).toBeLessThan(1000);
      await a.query('commit');
      await b.query('commit');
      expect(taken(await claim(queue, 10, b))).toHaveLength(2);
    } finally {
      a.release();
      b.release();
    }
    const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where queue = $1 and state = 'running'`, [queue]);
    expect(rows[0].n).toBe(5);
  });

  it('holds each queue of a claim to its own limits when two queues limit the same task name', async () => {
    // One claim over both queues, the roomy one first (the limited path there: a concurrency limit
    // beside the rate). The tight queue's window and group are its own, not what the roomy one's left.
    await limits('q-roomy', [['job', null, 100, 60_000], ['other', 5, null, null]]);
    await limits('q-tight', [['job', null, 2, 60_000], ['other', 1, null, null]]);
    for (let i = 0; i < 3; i++) await producer.spawn('job', { i }, { queue: 'q-roomy' });
    await producer.spawn('other', {}, { queue: 'q-roomy' });
    for (let i = 0; i < 5; i++) await producer.spawn('job', { i }, { queue: 'q-tight' });
    for (let i = 0; i < 3; i++) await producer.spawn('other', { i }, { queue: 'q-tight' });
    const rows = taken((await sql.query<Claimed>(
      `select * from durable.claim_tasks(array['q-roomy', 'q-tight'], 'probe', 20, 600000, false, 0)`)).rows);
    const count = (queue: string, name: string) => rows.filter((row) => row.queue === queue && row.name === name).length;
    expect([count('q-roomy', 'job'), count('q-roomy', 'other'), count('q-tight', 'job'), count('q-tight', 'other')]).toEqual([3, 1, 2, 1]);
  });

  it('reaches a runnable task behind a held backlog larger than one claim reads, taking none of the held ones', async () => {
    const queue = 'held';
    await limits(queue, [['held', 1, null, null]]);
    await producer.spawn('held', {}, { queue });
    expect((await claim(queue, 1)).filter((row) => row.run_id !== null)).toHaveLength(1); // the one slot, taken
    const backlog = 2600; // more than two claims' budget (1,000 runs each past the first pass)
    for (let i = 0; i < backlog; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, backlog - i) }, () => producer.spawn('held', {}, { queue })));
    }
    const { taskId: free } = await producer.spawn('free', {}, { queue });
    let claims = 0;
    let found = false;
    while (!found && claims < 10) {
      claims += 1;
      const rows = (await claim(queue, 1)).filter((row) => row.run_id !== null);
      expect(rows.every((row) => row.name === 'free')).toBe(true);
      found = rows.some((row) => row.task_id === free);
    }
    expect(found).toBe(true);
    expect(claims).toBeGreaterThanOrEqual(2); // it was out of the first claim's reach
    expect(claims).toBeLessThanOrEqual(4); // and each claim went on from where the last stopped
    const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where queue = $1 and name = 'held' and state = 'running'`, [queue]);
    expect(rows[0].n).toBe(1);
  });
});
