/**
 * Crashes with real processes: a worker killed with SIGKILL mid-task is recovered through lease
 * expiry by another process without re-running committed steps; several workers over hundreds
 * of tasks run every step exactly once; and `app.close()` drains in-flight handlers without
 * claiming anything new.
 *
 * Worker processes run test/fixtures/crash-worker.ts. The test spawns tasks with plain SQL
 * (`durable.spawn_task`), so the only durable connections to the database are the workers'.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { RemoteControl } from '../fixtures/leases-remote-control.js';
import { eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = resolve(root, 'node_modules/.bin/tsx');
const fixture = resolve(root, 'test/fixtures/crash-worker.ts');

interface WorkerProcess {
  /** The tsx launcher (group leader). */
  launcher: ChildProcess;
  /** The pid of the node process that runs the worker (reported by the fixture). */
  pid: number;
  workerId: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}

const launched = new Set<WorkerProcess>();

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startWorker(databaseUrl: string, workerId: string, env: Record<string, string>): Promise<WorkerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, CRASH_DATABASE_URL: databaseUrl, CRASH_WORKER_ID: workerId, ...env };
  delete childEnv.NODE_OPTIONS; // jest's --experimental-vm-modules is not for the child
  // detached: the launcher leads a process group, so cleanup can kill tsx and its node child together.
  const launcher = spawn(tsx, [fixture], { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  launcher.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  launcher.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    launcher.once('exit', (code, signal) => resolveExit({ code, signal })),
  );
  const worker: WorkerProcess = { launcher, pid: 0, workerId, exited, output: () => output };
  launched.add(worker);
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  worker.pid = await eventually(
    () => {
      if (exitedEarly) throw new Error(`worker ${workerId} exited during startup:\n${output}`);
      const match = /^ready (\d+)$/m.exec(output);
      return match ? Number(match[1]) : undefined;
    },
    45_000,
    `worker ${workerId} to start`,
  );
  return worker;
}

/** Kills every launched worker process group and waits for the launchers to exit. */
async function killAllWorkers(): Promise<void> {
  await Promise.all(
    [...launched].map(async (worker) => {
      launched.delete(worker);
      for (const target of [-worker.launcher.pid!, worker.pid]) {
        try {
          if (target) process.kill(target, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await worker.exited;
    }),
  );
}

async function spawnCrashTasks(pool: pg.Pool, count: number): Promise<string[]> {
  const { rows } = await pool.query<{ task_id: string }>(
    // In the select list, the (volatile) function runs once per row. Untyped literals fit json or jsonb.
    `select (durable.spawn_task('default', 'crash-task', '{}', '{}', 5, '{"kind":"fixed","delayMs":100}',
       null, null, null, null)).task_id from generate_series(1, $1)`,
    [count],
  );
  return rows.map((row) => row.task_id);
}

async function prepareDatabase(): Promise<{ db: TestDatabase; pool: pg.Pool }> {
  const db = await createTestDatabase();
  const pool = sqlPool(db.url);
  await pool.query(`create table effects (task_id uuid not null, step int not null, attempt int not null, pid int not null)`);
  return { db, pool };
}

async function countRows(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query(sql, values);
  return Number(rows[0].n);
}

describe('worker processes', () => {
  let db: TestDatabase | undefined;
  let pool: pg.Pool | undefined;

  afterEach(async () => {
    await killAllWorkers();
    await pool?.end();
    await db?.drop();
    pool = undefined;
    db = undefined;
  });

  it('a SIGKILLed worker\'s tasks are finished by another process; committed steps do not run again', async () => {
    ({ db, pool } = await prepareDatabase());
    const p = pool;
    const first = await startWorker(db.url, 'crash-1', { CRASH_LEASE_MS: '1000', CRASH_STEP_PAUSE_MS: '1500' });
    const taskIds = await spawnCrashTasks(p, 6);

    // Every task has run its first step (and is now between steps, or writing a checkpoint).
    await eventually(
      async () => (await countRows(p, `select count(distinct task_id) as n from effects where step = 1`)) === 6,
      30_000,
      'step 1 of every task',
    );
    // And at least one of those steps is checkpointed (on a loaded machine the commit can lag
    // behind the effect): the kill must find committed steps that must not run again.
    await eventually(
      async () => (await countRows(p, `select count(*) as n from durable.checkpoints`)) >= 1,
      30_000,
      'a committed checkpoint of step 1',
    );
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    expect(isRunning(first.pid)).toBe(false);
    // Wait until the killed process's sessions are gone: after that nothing of it can commit.
    await eventually(
      async () =>
        (await countRows(
          p,
          `select count(*) as n from pg_stat_activity where datname = $1 and application_name in ('nestjs-durable', 'crash-effects')`,
          [db!.name],
        )) === 0,
      30_000,
      'the killed worker\'s database sessions to end',
    );

    const { rows: committed } = await p.query<{ task_id: string; name: string; attempt: number }>(
      `select task_id, name, attempt from durable.checkpoints`,
    );
    const { rows: atKill } = await p.query<{ id: string; state: string }>(`select id, state from durable.tasks`);
    expect(atKill.map((task) => task.state)).toEqual(Array(6).fill('running'));
    expect(committed.length).toBeGreaterThanOrEqual(1);
    expect(committed.every((checkpoint) => checkpoint.attempt === 1)).toBe(true);

    const second = await startWorker(db.url, 'crash-2', { CRASH_LEASE_MS: '1000', CRASH_STEP_PAUSE_MS: '0' });
    await eventually(
      async () => (await countRows(p, `select count(*) as n from durable.tasks where state = 'completed'`)) === 6,
      40_000,
      'every task to complete',
    );

    for (const taskId of taskIds) {
      const { rows: task } = await p.query(`select state, attempts, result from durable.tasks where id = $1`, [taskId]);
      expect(task[0]).toEqual({ state: 'completed', attempts: 2, result: { pid: second.pid, attempt: 2, steps: [1, 2, 3] } });

      const { rows: runs } = await p.query(
        `select attempt, state, worker_id, error from durable.runs where task_id = $1 order by attempt`,
        [taskId],
      );
      expect(runs.map((run) => [run.attempt, run.state, run.worker_id])).toEqual([
        [1, 'failed', 'crash-1'],
        [2, 'completed', 'crash-2'],
      ]);
      expect(runs[0].error).toMatchObject({ name: 'LeaseExpired', workerId: 'crash-1', attempt: 1 });

      const { rows: checkpoints } = await p.query<{ name: string; attempt: number }>(
        `select name, attempt from durable.checkpoints where task_id = $1 order by name`,
        [taskId],
      );
      expect(checkpoints.map((checkpoint) => checkpoint.name)).toEqual(['step:s1', 'step:s2', 'step:s3']);

      const { rows: effects } = await p.query<{ step: number; attempt: number; pid: number }>(
        `select step, attempt, pid from effects where task_id = $1 order by step, attempt`,
        [taskId],
      );
      for (const step of [1, 2, 3]) {
        const ofStep = effects.filter((effect) => effect.step === step);
        const wasCommitted = committed.some((checkpoint) => checkpoint.task_id === taskId && checkpoint.name === `step:s${step}`);
        if (wasCommitted) {
          // Checkpointed before the kill: ran exactly once, by the killed worker, and kept.
          expect(ofStep).toEqual([{ step, attempt: 1, pid: first.pid }]);
          expect(checkpoints.find((checkpoint) => checkpoint.name === `step:s${step}`)!.attempt).toBe(1);
        } else {
          // Not checkpointed: attempt 2 ran it once (attempt 1 may have run it before dying).
          expect(ofStep.filter((effect) => effect.attempt === 2)).toEqual([{ step, attempt: 2, pid: second.pid }]);
          expect(ofStep.filter((effect) => effect.attempt === 1).every((effect) => effect.pid === first.pid)).toBe(true);
          expect(ofStep.length).toBeLessThanOrEqual(2);
          expect(checkpoints.find((checkpoint) => checkpoint.name === `step:s${step}`)!.attempt).toBe(2);
        }
      }
    }
    // The surviving worker is still alive: nothing crashed it.
    expect(isRunning(second.pid)).toBe(true);
  });

  it('three worker processes over 300 tasks run every step exactly once', async () => {
    ({ db, pool } = await prepareDatabase());
    const p = pool;
    const url = db.url;
    const workers = await Promise.all(
      ['many-1', 'many-2', 'many-3'].map((id) => startWorker(url, id, { CRASH_LEASE_MS: '30000', CRASH_STEP_PAUSE_MS: '0' })),
    );
    const taskIds = await spawnCrashTasks(p, 300);
    expect(new Set(taskIds).size).toBe(300);

    await eventually(
      async () => (await countRows(p, `select count(*) as n from durable.tasks where state = 'completed'`)) === 300,
      45_000,
      '300 completed tasks',
    );

    expect(await countRows(p, `select count(*) as n from effects`)).toBe(900);
    expect(await countRows(p, `select count(*) as n from (select distinct task_id, step from effects) e`)).toBe(900);
    expect(await countRows(p, `select count(*) as n from effects where attempt <> 1`)).toBe(0);
    expect(await countRows(p, `select count(*) as n from durable.checkpoints`)).toBe(900);
    expect(await countRows(p, `select count(*) as n from durable.tasks where state = 'completed' and attempts = 1`)).toBe(300);
    expect(await countRows(p, `select count(*) as n from durable.runs`)).toBe(300);
    expect(await countRows(p, `select count(*) as n from durable.runs where state = 'completed' and attempt = 1`)).toBe(300);

    // Each task ran start to finish in one process: the run's worker, its steps and its result agree.
    const pidOf = new Map(workers.map((worker) => [worker.workerId, worker.pid]));
    const { rows } = await p.query<{ worker_id: string; result: { pid: number }; pids: number[] }>(
      `select r.worker_id, t.result, (select array_agg(distinct e.pid) from effects e where e.task_id = t.id) as pids
       from durable.tasks t join durable.runs r on r.task_id = t.id`,
    );
    expect(rows).toHaveLength(300);
    for (const row of rows) {
      expect(pidOf.has(row.worker_id)).toBe(true);
      expect(row.pids).toEqual([pidOf.get(row.worker_id)]);
      expect(row.result.pid).toBe(pidOf.get(row.worker_id));
    }

    // No process died along the way, and each shuts down cleanly on SIGTERM.
    for (const worker of workers) expect(isRunning(worker.pid)).toBe(true);
    for (const worker of workers) process.kill(worker.pid, 'SIGTERM');
    const exits = await Promise.all(workers.map((worker) => worker.exited));
    expect(exits.map((exit) => exit.code)).toEqual([0, 0, 0]);
  });
});

const remote = new RemoteControl();

@DurableTask({ name: 'graceful' })
class GracefulTask implements DurableTaskHandler<unknown, unknown> {
  run(_params: unknown, ctx: TaskContext): Promise<unknown> {
    return remote.serve(ctx);
  }
}

describe('graceful shutdown', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let app: DurableTestApp | undefined;
  let producer: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    await app?.close();
    await producer?.close();
    await pool?.end();
    await db?.drop();
  });

  it('app.close() waits for the in-flight handler, records its completion, and claims nothing new', async () => {
    app = await startApp(db.url, [GracefulTask], { worker: { workerId: 'graceful-w', shutdownTimeoutMs: 30_000 } });
    producer = await startApp(db.url, [], { worker: false });
    const first = await producer.client.spawn('graceful', { n: 1 });
    const exec = await remote.execution(first.taskId);

    let closed = false;
    const closing = app.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const second = await producer.client.spawn('graceful', { n: 2 });
    // Several poll intervals (200 ms) and the spawn's NOTIFY: nothing claims the new task.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(closed).toBe(false);
    expect(remote.count(second.taskId)).toBe(0);

    // The in-flight handler keeps its lease and can still checkpoint while the app closes.
    await expect(exec.call((ctx) => ctx.step('during-shutdown', () => 'written'))).resolves.toBe('written');
    expect(closed).toBe(false);
    exec.finish('finished during shutdown');
    await closing;
    app = undefined;

    expect(await producer.client.getTask(first.taskId)).toMatchObject({
      state: 'completed', attempts: 1, result: 'finished during shutdown',
    });
    const { rows: firstRuns } = await pool.query(`select state, worker_id from durable.runs where task_id = $1`, [first.taskId]);
    expect(firstRuns).toEqual([{ state: 'completed', worker_id: 'graceful-w' }]);
    const { rows: checkpoints } = await pool.query(`select name, value from durable.checkpoints where task_id = $1`, [first.taskId]);
    expect(checkpoints).toEqual([{ name: 'step:during-shutdown', value: 'written' }]);

    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await producer.client.getTask(second.taskId)).toMatchObject({ state: 'pending', attempts: 1 });
    const { rows: secondRuns } = await pool.query(
      `select state, worker_id, started_at from durable.runs where task_id = $1`,
      [second.taskId],
    );
    expect(secondRuns).toEqual([{ state: 'pending', worker_id: null, started_at: null }]);
    expect(remote.count(second.taskId)).toBe(0);
  });
});
