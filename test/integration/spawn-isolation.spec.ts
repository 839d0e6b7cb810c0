/**
 * Concurrent `client.spawn` calls (without `manager`) share one statement, but never one
 * outcome (issue 13, item 3): a spawn that would wait for another transaction's row (its
 * idempotency key, or the first row of its queue, inserted by a transaction still open) waits
 * on its own, and the others of its batch succeed at once; a spawn the database refuses fails
 * alone.
 */
import type pg from 'pg';
import { DataSource, type QueryRunner } from 'typeorm';
import { DurableClient, type SpawnResult } from '../../lib/index.js';
import { sleep, sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };
/** "At once": far below the time the holders stay open (HOLD_MS). */
const PROMPT_MS = 3000;
const HOLD_MS = 1000;

let db: TestDatabase;
let client: DurableClient;
let dataSource: DataSource;
let sql: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  client = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
  dataSource = new DataSource({ type: 'postgres', url: db.url });
  await dataSource.initialize();
  sql = sqlPool(db.url);
  await client.spawn('isolated', { warm: true }); // the queue 'default' exists before the holders start
});

afterAll(async () => {
  await client?.close();
  if (dataSource?.isInitialized) await dataSource.destroy();
  await sql?.end();
  await db?.drop();
});

/** A promise whose state can be read without awaiting it. */
function track<T>(promise: Promise<T>) {
  const tracked = { settled: false, promise };
  promise.then(() => (tracked.settled = true), () => (tracked.settled = true));
  return tracked;
}

/** `promise`'s outcome, or 'pending' once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<{ state: 'fulfilled'; value: T } | { state: 'rejected'; error: unknown } | { state: 'pending' }> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<{ state: 'pending' }>((resolve) => (timer = setTimeout(() => resolve({ state: 'pending' }), ms)));
  try {
    return await Promise.race([
      promise.then((value) => ({ state: 'fulfilled' as const, value }), (error: unknown) => ({ state: 'rejected' as const, error })),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TypeORM transaction left open until the test ends it. */
async function openTransaction(): Promise<QueryRunner> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  return runner;
}

async function endTransaction(runner: QueryRunner, how: 'commit' | 'rollback'): Promise<void> {
  if (runner.isTransactionActive) await (how === 'commit' ? runner.commitTransaction() : runner.rollbackTransaction());
  await runner.release();
}

/** 50 plain spawns, half with keys of their own; they must all succeed at once. */
function unrelatedSpawns(tag: string): Promise<SpawnResult>[] {
  return Array.from({ length: 50 }, (_, n) =>
    client.spawn('isolated', { tag, n }, n % 2 === 0 ? { idempotencyKey: `${tag}-own-${n}` } : { queue: n % 5 === 0 ? `${tag}-fresh-${n}` : undefined }),
  );
}

/** Expects the unrelated spawns to have succeeded at once, each stored. */
async function expectPrompt(unrelated: Promise<SpawnResult>[], tag: string): Promise<void> {
  const started = Date.now();
  const outcome = await within(Promise.all(unrelated), PROMPT_MS);
  expect({ state: outcome.state, ms: Date.now() - started < PROMPT_MS }).toEqual({ state: 'fulfilled', ms: true });
  if (outcome.state !== 'fulfilled') return;
  expect(outcome.value.every((spawned) => spawned.created)).toBe(true);
  const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where params->>'tag' = $1`, [tag]);
  expect(rows[0].n).toBe(50);
}

describe('a plain spawn whose idempotency key an open transaction holds', () => {
  it.each(['commit', 'rollback'] as const)('waits for the holder (%s) without holding up the 50 other spawns of its batch', async (how) => {
    const key = `held-${how}`;
    const holder = await openTransaction();
    let held: SpawnResult | undefined;
    let blocked: ReturnType<typeof track<SpawnResult>> | undefined;
    try {
      held = await client.spawn('isolated', { by: 'holder' }, { idempotencyKey: key, manager: holder.manager });
      const unrelated = unrelatedSpawns(`a-${how}`);
      blocked = track(client.spawn('isolated', { by: 'plain' }, { idempotencyKey: key })); // same tick: one batch
      await expectPrompt(unrelated, `a-${how}`);
      await sleep(HOLD_MS);
      expect(blocked.settled).toBe(false);
    } finally {
      await endTransaction(holder, how);
    }
    const spawned = await within(blocked!.promise, 5000);
    expect(spawned.state).toBe('fulfilled');
    if (spawned.state !== 'fulfilled') return;
    if (how === 'commit') {
      expect(spawned.value).toEqual({ ...held, created: false });
    } else {
      expect(spawned.value.created).toBe(true);
      expect(spawned.value.taskId).not.toBe(held!.taskId);
      expect((await client.getTask(spawned.value.taskId))!.params).toEqual({ by: 'plain' });
    }
  });

  it('holds up no one when more keys are held than the pool has connections', async () => {
    const keys = Array.from({ length: 14 }, (_, n) => `many-held-${n}`);
    const holder = await openTransaction();
    const held: SpawnResult[] = [];
    let blocked: ReturnType<typeof track<SpawnResult[]>> | undefined;
    try {
      for (const key of keys) held.push(await client.spawn('isolated', { key }, { idempotencyKey: key, manager: holder.manager }));
      const unrelated = unrelatedSpawns('many');
      blocked = track(Promise.all(keys.map((key) => client.spawn('isolated', { key, by: 'plain' }, { idempotencyKey: key }))));
      await expectPrompt(unrelated, 'many');
      // With the blocked spawns waiting (14, more than the pool's 10 connections), later spawns
      // find connections too.
      await sleep(300);
      await expectPrompt(unrelatedSpawns('many-later'), 'many-later');
      expect(blocked.settled).toBe(false);
    } finally {
      await endTransaction(holder, 'commit');
    }
    const spawned = await within(blocked!.promise, 5000);
    expect(spawned).toEqual({ state: 'fulfilled', value: held.map((task) => ({ ...task, created: false })) });
  });
});

describe('a plain spawn into a new queue whose first row an open transaction inserted', () => {
  it.each([
    ['a spawn with manager', 'by-spawn', (runner: QueryRunner, queue: string) => client.spawn('isolated', { by: 'holder' }, { queue, manager: runner.manager })],
    ['a plain insert', 'by-insert', (runner: QueryRunner, queue: string) => runner.query(`insert into durable.queues (name, created_at) values ($1, now())`, [queue])],
  ] as const)('waits for the holder (%s) without holding up the other spawns of its batch', async (_how, tag, hold) => {
    const queue = `held-queue-${tag}`;
    const holder = await openTransaction();
    let blocked: ReturnType<typeof track<SpawnResult[]>> | undefined;
    try {
      await hold(holder, queue);
      const unrelated = unrelatedSpawns(`b-${tag}`);
      blocked = track(Promise.all([0, 1, 2, 3].map((n) => client.spawn('isolated', { n }, { queue, idempotencyKey: n % 2 ? `q-${n}` : undefined }))));
      await expectPrompt(unrelated, `b-${tag}`);
      await sleep(HOLD_MS);
      expect(blocked.settled).toBe(false);
    } finally {
      await endTransaction(holder, 'commit');
    }
    const spawned = await within(blocked!.promise, 5000);
    expect(spawned.state).toBe('fulfilled');
    if (spawned.state === 'fulfilled') expect(spawned.value.map((task) => task.created)).toEqual([true, true, true, true]);
    const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where queue = $1 and params::jsonb ? 'n'`, [queue]);
    expect(rows[0].n).toBe(4);
  });
});

describe('a spawn the database refuses', () => {
  beforeAll(async () => {
    await sql.query(`
      create function public.refuse_poison() returns trigger language plpgsql as $$
      begin raise exception 'poison refused'; end $$;
      create trigger refuse_poison before insert on durable.tasks
        for each row when (new.params::jsonb ? 'poison') execute function public.refuse_poison();`);
  });
  afterAll(async () => {
    await sql.query(`drop trigger refuse_poison on durable.tasks; drop function public.refuse_poison()`);
  });

  it('fails alone: the other spawns of its batch succeed', async () => {
    const others = Array.from({ length: 20 }, (_, n) => client.spawn('isolated', { tag: 'c', n }, n % 2 ? { idempotencyKey: `c-${n}` } : {}));
    const poison = client.spawn('isolated', { poison: true });
    const results = await Promise.allSettled([...others, poison]);
    expect(results.slice(0, 20).map((result) => result.status)).toEqual(Array(20).fill('fulfilled'));
    expect(results[20]).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('poison refused') } });
    const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where params->>'tag' = 'c'`);
    expect(rows[0].n).toBe(20);
  });
});

describe('spawn_batch_nowait', () => {
  it('takes at most 64 key locks per statement and defers the other new keys to the next one', async () => {
    const spawns = Array.from({ length: 100 }, (_, n) =>
      ['default', 'isolated', { n }, {}, 1, { kind: 'none' }, null, `cap-${n}`, null, null]);
    const { rows } = await sql.query(`select outcome, count(*)::int as n from durable.spawn_batch_nowait($1::json) group by outcome order by outcome`, [JSON.stringify(spawns)]);
    expect(rows).toEqual([{ outcome: 'deferred', n: 36 }, { outcome: 'ok', n: 64 }]);
  });

  it('gives a key already taken, and the same key twice in one batch, one task', async () => {
    const spawned = await Promise.all([
      client.spawn('isolated', { n: 1 }, { idempotencyKey: 'twice' }),
      client.spawn('isolated', { n: 2 }, { idempotencyKey: 'twice' }),
    ]);
    expect(spawned.map((task) => task.created)).toEqual([true, false]);
    expect(spawned[1].taskId).toBe(spawned[0].taskId);
    const again = await client.spawn('isolated', { n: 3 }, { idempotencyKey: 'twice' });
    expect(again).toEqual({ ...spawned[0], created: false });
  });
});
