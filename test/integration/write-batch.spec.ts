/**
 * `write_batch` called directly against a real Postgres: in one batch whose operations are not in
 * task order (the function locks in task order), each operation gets its own outcome (`ok`,
 * `exists`, `lost`, `cancelled`, no row for a task that does not exist); a batch of nothing but
 * progress writes commits without waiting for its WAL flush, any other batch waits; and neither
 * `write_batch` nor a claim by id (`_claim_runs`, as a limited claim makes it) reads `runs` or
 * `tasks` whole to find the rows they name, even when the statistics say that most runs are due.
 */
import type pg from 'pg';
import { DurableClient, type DurableLogger } from '../../lib/index.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };
const WORKER = 'batch-probe';

type Claimed = { run_id: string; task_id: string; epoch: number; attempt: number };
type Op = { kind: 'checkpoint' | 'complete' | 'progress'; task_id: string; run_id: string; epoch: number; name?: string; value?: unknown };

describe('write_batch', () => {
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

  /** Spawns `n` tasks on a queue of their own and claims them all as WORKER. */
  const claimed = async (queue: string, n: number): Promise<Claimed[]> => {
    for (let i = 0; i < n; i++) await producer.spawn('probe', { i }, { queue });
    const { rows } = await sql.query<Claimed>(
      `select run_id, task_id, epoch, attempt from durable.claim_tasks(array[$1], $2, $3, 600000, false) where run_id is not null`,
      [queue, WORKER, n],
    );
    expect(rows).toHaveLength(n);
    return rows;
  };
  const op = (run: Claimed, kind: Op['kind'], extra: Partial<Op> = {}) =>
    ({ kind, task_id: run.task_id, run_id: run.run_id, epoch: run.epoch, name: null, value: null, undefined: false, attempt: run.attempt, lease_ms: 600000, ...extra });
  const writeBatch = async (ops: object[], client: pg.Pool | pg.PoolClient = sql) =>
    (await client.query<{ i: number; outcome: string }>(`select i, outcome from durable.write_batch($1, $2::json) order by i`, [WORKER, JSON.stringify(ops)])).rows;

  it('gives each operation its own outcome, whatever their order', async () => {
    const runs = await claimed('outcomes', 6);
    // Sorted by task id descending, so that the operations' order is not the locking order.
    const [stored, fresh, completed, stale, cancelled, progress] = [...runs].sort((a, b) => b.task_id.localeCompare(a.task_id));
    expect(await writeBatch([op(stored, 'checkpoint', { name: 'a', value: 1 })])).toEqual([{ i: 1, outcome: 'ok' }]);
    await producer.cancel(cancelled.task_id);

    const missing = { ...fresh, task_id: '00000000-0000-7000-8000-000000000000', run_id: '00000000-0000-7000-8000-000000000001' };
    const outcomes = await writeBatch([
      op(stored, 'checkpoint', { name: 'a', value: 2 }),
      op(fresh, 'checkpoint', { name: 'a', value: 3 }),
      op(missing, 'checkpoint', { name: 'a', value: 4 }),
      op(completed, 'complete', { value: { done: true } }),
      op(stale, 'complete', { epoch: stale.epoch + 1, value: 5 }),
      op(cancelled, 'checkpoint', { name: 'a', value: 6 }),
      op(progress, 'progress', { value: { pct: 50 } }),
    ]);
    expect(outcomes).toEqual([
      { i: 1, outcome: 'exists' },
      { i: 2, outcome: 'ok' },
      // i 3: no task, no row (the caller counts it lost).
      { i: 4, outcome: 'ok' },
      { i: 5, outcome: 'lost' },
      { i: 6, outcome: 'cancelled' },
      { i: 7, outcome: 'ok' },
    ]);

    // What each outcome wrote: the first checkpoint stays, the refused writes wrote nothing.
    const { rows: checkpoints } = await sql.query(`select task_id, value from durable.checkpoints where name = 'a' order by value::text`);
    expect(checkpoints).toEqual([{ task_id: stored.task_id, value: 1 }, { task_id: fresh.task_id, value: 3 }]);
    const { rows: tasks } = await sql.query(
      `select id, state, result, progress from durable.tasks where id = any($1) order by id`,
      [[completed.task_id, stale.task_id, progress.task_id]],
    );
    const byId = new Map(tasks.map((row) => [row.id, row]));
    expect(byId.get(completed.task_id)).toMatchObject({ state: 'completed', result: { done: true }, progress: null });
    expect(byId.get(stale.task_id)).toMatchObject({ state: 'running', result: null });
    expect(byId.get(progress.task_id)).toMatchObject({ state: 'running', progress: { pct: 50 } });
    const { rows: [run] } = await sql.query(`select state, finished_at from durable.runs where id = $1`, [completed.run_id]);
    expect(run.state).toBe('completed');
    expect(run.finished_at).not.toBeNull();
  });

  it('commits a batch of nothing but progress writes without waiting for the WAL flush, and any other batch with it', async () => {
    const [a, b] = await claimed('commit-mode', 2);
    const settingAfter = async (ops: object[]): Promise<string> => {
      const client = await sql.connect();
      try {
        await client.query('begin');
        await writeBatch(ops, client);
        return (await client.query<{ synchronous_commit: string }>('show synchronous_commit')).rows[0].synchronous_commit;
      } finally {
        await client.query('rollback');
        client.release();
      }
    };
    expect(await settingAfter([op(a, 'progress', { value: 1 }), op(b, 'progress', { value: 2 })])).toBe('off');
    expect(await settingAfter([op(a, 'progress', { value: 1 }), op(b, 'checkpoint', { name: 's', value: 2 })])).toBe('on');
    expect(await settingAfter([op(a, 'complete', { value: 1 })])).toBe('on');
  });

  it('finds the rows of a batch, and of a claim by id, by primary key: never by a scan of runs or tasks', async () => {
    const queue = 'keyed';
    // A backlog the planner knows about: most runs due (a hash join over a scan of runs looks cheap).
    await Promise.all(Array.from({ length: 3000 }, (_, i) => producer.spawn('probe', { i }, { queue })));
    await sql.query('analyze durable.runs, durable.tasks');
    const client = await sql.connect();
    // Sequential scans of each table counted by this backend and not yet reported (since
    // PostgreSQL 15 that may include earlier transactions; nothing is reported inside a transaction
    // block, so a difference within one is exact).
    const scans = async () => (await client.query<{ runs: number; tasks: number }>(
      `select pg_stat_get_xact_numscans('durable.runs'::regclass)::int as runs, pg_stat_get_xact_numscans('durable.tasks'::regclass)::int as tasks`,
    )).rows[0];
    try {
      // Several claims and batches in a row: plpgsql plans anew for the first calls, then may keep a generic plan.
      for (let round = 0; round < 7; round++) {
        const { rows: [chosen] } = await sql.query<{ ids: string[] }>(
          `select array_agg(id) as ids from (select r.id from durable.runs r where r.queue = $1 and r.state = 'pending' limit 200) r`, [queue]);
        await client.query('begin');
        let before = await scans();
        // What a limited claim does with the runs it chose (claim_tasks' limited path).
        const { rows } = await client.query<Claimed>(
          `select c.run_id, c.task_id, c.epoch, c.attempt
           from durable._claim_runs($1, 0, $3, 200, $2, durable.now(), durable.now() + interval '10 minutes') c`,
          [queue, WORKER, chosen.ids],
        );
        expect(rows).toHaveLength(200);
        expect(await scans()).toEqual(before);
        await client.query('commit');

        await client.query('begin');
        before = await scans();
        const outcomes = await writeBatch(rows.map((run) => op(run, 'complete', { value: round })), client);
        expect(outcomes.every((row) => row.outcome === 'ok')).toBe(true);
        expect(await scans()).toEqual(before);
        await client.query('commit');
      }
    } finally {
      await client.query('rollback').catch(() => undefined);
      client.release();
    }
  });
});
