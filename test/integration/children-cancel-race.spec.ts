/**
 * Cancelling a parent while its children reach terminal states (issue 14's known limit): a
 * child's terminal transition locks the child's row, then its parent's (`_child_terminal`),
 * while `cancel_task` locks the parent, then its descendants. Since migration 0007 the cascade
 * of `cancel_task` never waits for a lock while holding another: a busy row rolls its attempt
 * back (releasing the parent) and it tries again, so the two can no longer deadlock.
 *
 * The first test builds the interleaving deterministically from two connections (the child's
 * side holds the child's row as every write of its run does first, then counts itself off its
 * parent); before 0007 PostgreSQL aborted one of the two with 40P01 after deadlock_timeout. The
 * second runs the race many times through real workers.
 */
import pg from 'pg';
import { DurableTask, type DurableTaskHandler, type TaskContext, type TaskHandle } from '../../lib/index.js';
import { eventually, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const TERMINAL = ['completed', 'failed', 'cancelled'];

@DurableTask({ name: 'race-kid', retry: { kind: 'none' } })
class RaceKidTask implements DurableTaskHandler<{ value: number; waitFor?: string }, number> {
  async run(params: { value: number; waitFor?: string }, ctx: TaskContext) {
    if (params.waitFor) await ctx.awaitEvent(params.waitFor);
    return ctx.step('double', () => params.value * 2);
  }
}

@DurableTask({ name: 'race-fan', retry: { kind: 'none' } })
class RaceFanTask implements DurableTaskHandler<{ kids: number; waitFor?: string }, number[]> {
  async run(params: { kids: number; waitFor?: string }, ctx: TaskContext) {
    const handles: TaskHandle<number>[] = [];
    for (let i = 0; i < params.kids; i += 1) handles.push(await ctx.spawn(`kid-${i}`, RaceKidTask, { value: i, waitFor: params.waitFor }));
    return ctx.joinAll(handles);
  }
}

describe('cancelling a parent while its children end', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    // Detects a deadlock quickly, should there be one (for the connections opened from now on).
    await pool.query(`alter database ${pg.escapeIdentifier(new URL(db.url).pathname.slice(1))} set deadlock_timeout = '200ms'`);
    await pool.end();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [RaceKidTask, RaceFanTask], { worker: { concurrency: 20, pollIntervalMs: 50 } });
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  /** Deadlocks PostgreSQL detected in this database (its statistics are flushed within a second). */
  const deadlocks = async () => {
    await sleep(1500);
    await pool.query('select pg_stat_clear_snapshot()');
    const { rows } = await pool.query<{ n: number }>('select deadlocks::int as n from pg_stat_database where datname = current_database()');
    return rows[0].n;
  };

  const states = async (parent: string) => {
    const { rows } = await pool.query<{ id: string; state: string; parent_task_id: string | null }>(
      `select id, state, parent_task_id from durable.tasks where id = $1 or parent_task_id = $1`, [parent]);
    return rows;
  };

  it('a child ending while holding its row does not deadlock with cancel() of its parent', async () => {
    const event = `never-${Date.now()}`;
    const { taskId: parent } = await t.client.spawn(RaceFanTask, { kids: 3, waitFor: event });
    await eventually(async () => {
      const rows = await states(parent);
      return rows.length === 4 && rows.every((row) => row.state === 'sleeping');
    }, 20_000, 'the parent and its children asleep');
    const kids = (await states(parent)).filter((row) => row.parent_task_id === parent).map((row) => row.id).sort();

    const child = new pg.Client({ connectionString: db.url });
    const canceller = new pg.Client({ connectionString: db.url });
    await child.connect();
    await canceller.connect();
    try {
      // The child's side: its row first, as every write of its run does (the fence), ...
      await child.query('begin');
      await child.query('select 1 from durable.tasks where id = $1 for update', [kids[1]]);
      // ... meanwhile cancel() of the parent reaches that child and cannot have it ...
      const cancelPid = (await canceller.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
      const cancelled = canceller.query<{ outcome: string }>('select durable.cancel_task($1) as outcome', [parent]);
      await eventually(async () => {
        const { rows } = await pool.query<{ blocked: boolean }>(
          `select (wait_event_type = 'Lock' or wait_event = 'PgSleep') as blocked from pg_stat_activity where pid = $1`, [cancelPid]);
        return rows[0]?.blocked === true;
      }, 10_000, 'cancel() to reach the busy child');
      // ... then the child ends (here: cancelled by its policy, as the claim's sweep does), which
      // counts it off its parent under the parent's lock.
      await child.query(`select durable._cancel($1, durable.now(), '{"name": "TaskCancelled", "message": "policy"}'::jsonb)`, [kids[1]]);
      await child.query('commit');
      expect((await cancelled).rows).toEqual([{ outcome: 'cancelled' }]);
    } finally {
      await child.end();
      await canceller.end();
    }
    const rows = await states(parent);
    expect(rows.map((row) => row.state)).toEqual(['cancelled', 'cancelled', 'cancelled', 'cancelled']);
    const errors = await pool.query(`select id, error->>'message' as message from durable.tasks where id = any($1) order by id`, [kids]);
    expect(errors.rows.map((row) => row.message)).toEqual([
      `cancelled because its parent task ${parent} ended without completing`,
      'policy',
      `cancelled because its parent task ${parent} ended without completing`,
    ]);
    const runs = await pool.query(`select state, count(*)::int as n from durable.runs where task_id = $1 or task_id = any($2) group by state`, [parent, kids]);
    expect(runs.rows).toEqual([{ state: 'cancelled', n: 4 }]);
    expect(await deadlocks()).toBe(0);
  });

  it('many parents cancelled while their children complete: no error, and consistent final states', async () => {
    const rounds = 40;
    const failures: string[] = [];
    const parents: string[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const { taskId } = await t.client.spawn(RaceFanTask, { kids: 12 });
      parents.push(taskId);
      // Cancel while the children are being spawned, run and completed (one batch often completes many).
      await eventually(async () => (await states(taskId)).some((row) => row.state === 'completed'), 20_000, 'a first child completed', 2)
        .catch(() => undefined);
      await sleep(round % 5);
      await t.client.cancel(taskId).catch((error: Error) => failures.push(`cancel: ${error.message}`));
    }
    // Every task terminal; a cancelled parent has only terminal children; a completed one, all completed.
    await eventually(async () => {
      const { rows } = await pool.query(
        `select count(*)::int as n from durable.tasks where (id = any($1) or parent_task_id = any($1)) and state not in ('completed', 'failed', 'cancelled')`,
        [parents]);
      return rows[0].n === 0;
    }, 30_000, 'every task terminal');
    let raced = 0;
    for (const parent of parents) {
      const rows = await states(parent);
      const own = rows.find((row) => row.id === parent)!;
      const kids = rows.filter((row) => row.parent_task_id === parent);
      expect(['cancelled', 'completed']).toContain(own.state);
      expect(kids.every((kid) => TERMINAL.includes(kid.state) && kid.state !== 'failed')).toBe(true);
      if (own.state === 'completed') expect(kids.map((kid) => kid.state)).toEqual(Array(12).fill('completed'));
      if (own.state === 'cancelled' && kids.some((kid) => kid.state === 'completed')) raced += 1;
    }
    // The race was run: parents cancelled while some of their children had completed.
    expect(raced).toBeGreaterThan(0);
    // Nothing failed: a deadlock would have failed a run (or a cancel) with 40P01.
    const failed = await pool.query(
      `select count(*)::int as n from durable.runs r join durable.tasks t on t.id = r.task_id
       where (t.id = any($1) or t.parent_task_id = any($1)) and (r.state = 'failed' or r.error::text like '%deadlock%')`, [parents]);
    expect(failed.rows).toEqual([{ n: 0 }]);
    expect(failures).toEqual([]);
    // And PostgreSQL detected none in this database (a worker's write aborted by one is retried, so count them).
    expect(await deadlocks()).toBe(0);
    // Each run ended in the state of its task.
    const mismatched = await pool.query(
      `select count(*)::int as n from durable.runs r join durable.tasks t on t.run_id = r.id
       where (t.id = any($1) or t.parent_task_id = any($1)) and r.state <> t.state`, [parents]);
    expect(mismatched.rows).toEqual([{ n: 0 }]);
  }, 120_000);
});
