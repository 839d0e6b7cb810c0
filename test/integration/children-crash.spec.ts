/**
 * A worker process SIGKILLed while a parent's children run and the moment the last one completes
 * (the child's completion and the parent's wake-up commit together): another process finishes
 * everything, nothing is lost, no second child is spawned and the parent completes once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { eventually, sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = resolve(root, 'node_modules/.bin/tsx');
const fixture = resolve(root, 'test/fixtures/children-crash-worker.ts');
const KIDS = 12;

interface WorkerProcess {
  launcher: ChildProcess;
  pid: number;
  exited: Promise<unknown>;
}
const launched = new Set<WorkerProcess>();

async function startWorker(databaseUrl: string, workerId: string, env: Record<string, string>): Promise<WorkerProcess> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, CRASH_DATABASE_URL: databaseUrl, CRASH_WORKER_ID: workerId, CRASH_KIDS: String(KIDS), ...env };
  delete childEnv.NODE_OPTIONS;
  const launcher = spawn(tsx, [fixture], { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  launcher.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  launcher.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let gone = false;
  const exited = new Promise((resolveExit) => launcher.once('exit', (code, signal) => resolveExit({ code, signal })));
  void exited.then(() => (gone = true));
  const worker: WorkerProcess = { launcher, pid: 0, exited };
  launched.add(worker);
  worker.pid = await eventually(() => {
    if (gone) throw new Error(`worker ${workerId} exited during startup:\n${output}`);
    const match = /^ready (\d+)$/m.exec(output);
    return match ? Number(match[1]) : undefined;
  }, 45_000, `worker ${workerId} to start`);
  return worker;
}

async function kill(worker: WorkerProcess): Promise<void> {
  launched.delete(worker);
  for (const target of [-worker.launcher.pid!, worker.pid]) {
    try {
      if (target) process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await worker.exited;
}

describe('child tasks across a SIGKILL', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
  });
  afterAll(async () => {
    for (const worker of [...launched]) await kill(worker);
    await pool?.end();
    await db?.drop();
  });

  const count = async (sql: string, values: unknown[] = []) => Number((await pool.query(sql, values)).rows[0].n);

  it('loses nothing when the worker dies as the last child completes and wakes its parent', async () => {
    const first = await startWorker(db.url, 'first', { CRASH_KID_PAUSE_MS: '150', CRASH_LEASE_MS: '1000' });
    await pool.query(`create table effects (task_id uuid not null, what text not null, attempt int not null, pid int not null)`);
    const { rows: [{ task_id: parent }] } = await pool.query(
      `select (durable.spawn_task('default', 'crash-parent', '{}', '{}', 10, '{"kind":"fixed","delayMs":50}', null, null, null, null)).task_id`,
    );
    // Kill as soon as the last child completed: its completion woke the parent in the same commit.
    await eventually(
      async () => (await count(`select count(*) as n from durable.tasks where parent_task_id = $1 and state = 'completed'`, [parent])) === KIDS,
      60_000, 'every child to complete', 2,
    );
    await kill(first);
    const atKill = (await pool.query(`select state from durable.tasks where id = $1`, [parent])).rows[0].state;
    expect(['pending', 'running', 'completed']).toContain(atKill); // woken: never left asleep

    await startWorker(db.url, 'second', { CRASH_KID_PAUSE_MS: '0', CRASH_LEASE_MS: '1000' });
    await eventually(async () => (await pool.query(`select state from durable.tasks where id = $1`, [parent])).rows[0].state === 'completed',
      60_000, 'the parent to complete');
    const { rows: [task] } = await pool.query(`select result from durable.tasks where id = $1`, [parent]);
    expect(task.result).toBe((KIDS * (KIDS - 1)) / 2);
    expect(await count(`select count(*) as n from durable.tasks where parent_task_id = $1`, [parent])).toBe(KIDS);
    expect(await count(`select count(*) as n from durable.tasks where parent_task_id = $1 and state = 'completed'`, [parent])).toBe(KIDS);
    // The resumed parent's step ran once, or twice if the kill fell inside it (steps are at-least-once).
    expect([1, 2]).toContain(await count(`select count(*) as n from effects where task_id = $1 and what = 'resumed'`, [parent]));
    expect(await count(`select count(*) as n from durable.runs where task_id = $1 and state = 'completed'`, [parent])).toBe(1);
    expect(await count(`select count(distinct task_id) as n from effects where what = 'kid'`)).toBe(KIDS);
  }, 150_000);

  it('loses nothing when the worker dies while children are in flight', async () => {
    const first = await startWorker(db.url, 'third', { CRASH_KID_PAUSE_MS: '400', CRASH_LEASE_MS: '1000' });
    const { rows: [{ task_id: parent }] } = await pool.query(
      `select (durable.spawn_task('default', 'crash-parent', '{}', '{}', 10, '{"kind":"fixed","delayMs":50}', null, null, null, null)).task_id`,
    );
    await eventually(
      async () => (await count(`select count(*) as n from durable.tasks where parent_task_id = $1 and state = 'completed'`, [parent])) >= KIDS / 2,
      60_000, 'half of the children to complete',
    );
    await kill(first);
    await startWorker(db.url, 'fourth', { CRASH_KID_PAUSE_MS: '0', CRASH_LEASE_MS: '1000' });
    await eventually(async () => (await pool.query(`select state from durable.tasks where id = $1`, [parent])).rows[0].state === 'completed',
      60_000, 'the parent to complete');
    expect((await pool.query(`select result from durable.tasks where id = $1`, [parent])).rows[0].result).toBe((KIDS * (KIDS - 1)) / 2);
    expect(await count(`select count(*) as n from durable.tasks where parent_task_id = $1`, [parent])).toBe(KIDS);
    expect(await count(`select count(*) as n from effects where task_id = $1 and what = 'resumed'`, [parent])).toBe(1);
    expect((await pool.query(`select attempts from durable.tasks where id = $1`, [parent])).rows[0].attempts).toBe(1);
  }, 150_000);
});
