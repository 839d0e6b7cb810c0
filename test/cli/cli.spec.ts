/**
 * `npx nestjs-durable` as operators run it: the built binary (package.json's `bin`), started as
 * a child process against a real database that a Nest app's worker fills. Exit codes (0 ok, 1
 * not found or refused, 2 bad usage), stdout holding only the result (one JSON document with
 * --json, parsed here), errors on stderr, tables within 80 columns, and no password printed.
 *
 * The package is compiled here into a folder of its own (as test/packaging/consumers.spec.ts
 * does): `npm run build` empties the repository's dist/, which other specs may be using.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NonRetryableError, type TaskContext, type TaskDetail, type TaskSnapshot } from '../../lib/index.js';
import { eventually, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { durableTask } from '../helpers/durable-task.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const MISSING = '00000000-0000-4000-8000-000000000000';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// The children must not inherit jest's NODE_OPTIONS, nor a database from the environment.
const baseEnv = { ...process.env };
delete baseEnv.NODE_OPTIONS;
delete baseEnv.DURABLE_DATABASE_URL;
delete baseEnv.DURABLE_SCHEMA;

function run(command: string, args: string[], env: NodeJS.ProcessEnv = baseEnv, timeout = 60_000): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(command, args, { cwd: ROOT, env, timeout, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) => {
      done({ code: child.exitCode, stdout, stderr });
    });
  });
}

const Story = durableTask('Story', { name: 'story' }, async (p: { id: number; note?: string }, ctx: TaskContext) => {
  await ctx.step('charge', () => ({ charged: p.id, note: p.note ?? null }));
  await ctx.step('reserve', () => 'reserved');
  const payload = await ctx.awaitEvent<{ by: string }>(`packed:${p.id}`, { timeoutMs: 3_600_000 });
  return { packedBy: payload.by };
});
const Boom = durableTask('Boom', { name: 'boom' }, () => {
  throw new NonRetryableError('boom, for good');
});
const Sleepy = durableTask('Sleepy', { name: 'sleepy' }, async (_p: unknown, ctx: TaskContext) => {
  await ctx.sleepFor('nap', 3_600_000);
});
const Parent = durableTask('Parent', { name: 'parent' }, async (_p: unknown, ctx: TaskContext) => {
  const kid = await ctx.spawn('kid', 'sleepy', {});
  return ctx.join(kid);
});

describe('the nestjs-durable CLI (built binary)', () => {
  let work: string;
  let bin: string;
  let db: TestDatabase;
  let app: DurableTestApp | undefined;
  let env: NodeJS.ProcessEnv;
  const cli = (...args: string[]) => run(process.execPath, [bin, ...args], env);
  const json = async <T>(...args: string[]): Promise<T> => {
    const result = await cli('--json', ...args);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(result.stdout) as T;
  };
  const settled = (taskId: string, state: TaskSnapshot['state']) =>
    eventually(async () => (await app!.client.getTask(taskId))?.state === state, 15_000, `task ${taskId} ${state}`);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nestjs-durable-cli-'));
    copyFileSync(join(ROOT, 'package.json'), join(work, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(work, 'node_modules'), 'dir');
    const build = await run(process.execPath, [TSC, '-p', 'tsconfig.build.json', '--outDir', join(work, 'dist')], baseEnv, 120_000);
    if (build.code !== 0) throw new Error(`the build failed:\n${build.stdout}\n${build.stderr}`);
    const pkg = JSON.parse(readFileSync(join(work, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    bin = join(work, pkg.bin['nestjs-durable']);
    db = await createTestDatabase();
    env = { ...baseEnv, DURABLE_DATABASE_URL: db.url };
  }, 150_000);
  afterAll(async () => {
    await app?.close();
    await db?.drop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is the package\'s bin, a node script', () => {
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('has --help on every command (exit 0, on stdout)', async () => {
    const top = await cli('--help');
    expect(top.code).toBe(0);
    for (const command of ['tasks', 'events', 'queues', 'schedules', 'migrate', 'cleanup']) expect(top.stdout).toContain(command);
    const commands = [['tasks', 'list'], ['tasks', 'show'], ['tasks', 'retry'], ['tasks', 'cancel'], ['events', 'emit'],
      ['queues', 'stats'], ['schedules', 'list'], ['migrate'], ['cleanup']];
    const helps = await Promise.all(commands.map((command) => cli(...command, '--help')));
    for (const [i, help] of helps.entries()) {
      expect({ command: commands[i], code: help.code, usage: help.stdout.startsWith(`Usage: nestjs-durable ${commands[i].join(' ')}`) })
        .toEqual({ command: commands[i], code: 0, usage: true });
      expect(help.stdout).toContain('--database-url');
    }
  });

  it('migrate applies the migrations once (--json), then says the schema is up to date', async () => {
    const first = await json<{ schema: string; applied: string[]; total: number }>('migrate');
    expect(first.schema).toBe('durable');
    expect(first.applied).toHaveLength(first.total);
    expect(first.applied[0]).toBe('DurableCreateTables1764000000001');
    const again = await cli('migrate');
    expect(again).toEqual({ code: 0, stdout: `schema "durable" is up to date (${first.total} migrations)\n`, stderr: '' });
    // The app finds the schema ready.
    app = await startApp(db.url, [Story, Boom, Sleepy, Parent], { migrationsRun: false, worker: { concurrency: 5 } });
  });

  it('tasks list: newest first, with why each waits (--json), and a table within 80 columns', async () => {
    const { taskId } = await app!.client.spawn('story', { id: 1 });
    await settled(taskId, 'sleeping');
    const parked = await app!.client.spawn('story', { id: 2 }, { queue: 'parked' });
    const page = await json<TaskSnapshot[]>('tasks', 'list');
    expect(page.map((t) => [t.taskId, t.waitingFor?.reason])).toEqual([[parked.taskId, 'noWorker'], [taskId, 'event']]);
    expect(await json<TaskSnapshot[]>('tasks', 'list', '--queue', 'parked')).toHaveLength(1);
    expect(await json<TaskSnapshot[]>('tasks', 'list', '--limit', '1', '--cursor', parked.taskId)).toMatchObject([{ taskId }]);

    const table = await cli('tasks', 'list');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+NAME\s+QUEUE\s+DETAIL$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual([parked.taskId, taskId]);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(80);
  });

  it('tasks show: the task, its runs, its checkpoints in order, its events, children and what it waits for', async () => {
    const note = `${'x'.repeat(300)}\u001b[31m<script>alert(1)</script>\nmore`;
    const { taskId } = await app!.client.spawn('story', { id: 3, note });
    await settled(taskId, 'sleeping');
    const detail = await json<TaskDetail>('tasks', 'show', taskId);
    expect(detail.task).toMatchObject({ taskId, state: 'sleeping', waitingFor: { reason: 'event', eventName: 'packed:3' } });
    expect(detail.runs).toMatchObject([{ attempt: 1, state: 'sleeping' }]);
    expect(detail.checkpoints.map((c) => c.name)).toEqual(['step:charge', 'step:reserve']);
    expect(detail.checkpoints[0].value).toEqual({ charged: 3, note });
    expect(detail.eventWaits).toMatchObject([{ eventName: 'packed:3', queue: 'default' }]);

    const shown = await cli('tasks', 'show', taskId);
    expect({ code: shown.code, stderr: shown.stderr }).toEqual({ code: 0, stderr: '' });
    const text = shown.stdout;
    expect(text).toMatch(new RegExp(`^Task\\s+${taskId}$`, 'm'));
    // Wrapped, not cut: the wait's end is on the next line at 80 columns.
    expect(text).toMatch(/^Waiting\s+event: waiting for event "packed:3" on queue "default", until\s+\d{4}-\d\d-\d\dT/m);
    expect(text).toMatch(/^Runs \(1\)$/m);
    expect(text.indexOf('step:charge')).toBeGreaterThan(text.indexOf('Steps and checkpoints, in order (2)'));
    expect(text.indexOf('step:reserve')).toBeGreaterThan(text.indexOf('step:charge'));
    expect(text).toMatch(/waits for "packed:3" on queue default, times out /);
    expect(text).toMatch(/^Children \(0\)$/m);
    // User data is cut and shown as text: no raw escape character or line break of its own.
    expect(text).not.toContain('\u001b');
    for (const line of text.trimEnd().split('\n')) expect(line.length).toBeLessThanOrEqual(80);

    const parent = await app!.client.spawn('parent');
    await settled(parent.taskId, 'sleeping');
    const family = await json<TaskDetail>('tasks', 'show', parent.taskId);
    expect(family.childCount).toBe(1);
    expect(family.task.waitingFor).toMatchObject({ reason: 'children', childTaskIds: [family.children[0].taskId] });
    expect((await cli('tasks', 'show', parent.taskId)).stdout).toContain(family.children[0].taskId);
  });

  it('events emit wakes the task waiting on it', async () => {
    const { taskId } = await app!.client.spawn('story', { id: 4 });
    await settled(taskId, 'sleeping');
    const emitted = await cli('events', 'emit', 'packed:4', '{"by":"cli"}');
    expect({ code: emitted.code, stderr: emitted.stderr }).toEqual({ code: 0, stderr: '' });
    expect(emitted.stdout).toContain('event "packed:4" emitted on queue "default"');
    await settled(taskId, 'completed');
    expect((await app!.client.getTask(taskId))!.result).toEqual({ packedBy: 'cli' });
    expect(await json('events', 'emit', 'other', '--queue', 'parked')).toEqual({ queue: 'parked', eventName: 'other', payload: null });
  });

  it('tasks cancel: a sleeping task is cancelled (and again is fine); a completed one is refused with exit 1', async () => {
    const { taskId } = await app!.client.spawn('sleepy');
    await settled(taskId, 'sleeping');
    const cancelled = await json<TaskSnapshot>('tasks', 'cancel', taskId);
    expect(cancelled).toMatchObject({ taskId, state: 'cancelled', waitingFor: null });
    expect((await app!.client.getTask(taskId))!.state).toBe('cancelled');
    expect(await cli('tasks', 'cancel', taskId)).toEqual({ code: 0, stdout: `task ${taskId} was cancelled already\n`, stderr: '' });

    const done = (await app!.client.listTasks({ state: 'completed' }))[0];
    const refused = await cli('tasks', 'cancel', done.taskId);
    expect(refused).toEqual({
      code: 1, stdout: '',
      stderr: `nestjs-durable: task ${done.taskId} is completed: only pending, running or sleeping tasks can be cancelled\n`,
    });
  });

  it('tasks retry: a failed task gets a new attempt; a running or sleeping one is refused with exit 1', async () => {
    const { taskId } = await app!.client.spawn('boom');
    await settled(taskId, 'failed');
    const retried = await cli('tasks', 'retry', taskId);
    expect(retried).toEqual({ code: 0, stdout: expect.stringMatching(new RegExp(`^task ${taskId} retried: attempt 2 is `)), stderr: '' });
    await eventually(async () => {
      const task = await app!.client.getTask(taskId);
      return task?.attempts === 2 && task.state === 'failed';
    });
    const sleeping = (await app!.client.listTasks({ state: 'sleeping' }))[0];
    const refused = await cli('tasks', 'retry', sleeping.taskId);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('only failed or cancelled tasks can be retried');
    expect(refused.stdout).toBe('');
  });

  it('an unknown id is exit 1, with the reason on stderr and nothing on stdout', async () => {
    for (const command of ['show', 'retry', 'cancel']) {
      expect(await cli('--json', 'tasks', command, MISSING)).toEqual({
        code: 1, stdout: '', stderr: `nestjs-durable: no task with id ${MISSING} (list tasks with \`nestjs-durable tasks list\`)\n`,
      });
    }
  });

  it('bad usage is exit 2 with what to fix on stderr', async () => {
    const cases: [string[], RegExp][] = [
      [['tasks', 'show', 'not-a-uuid'], /expected a task id \(a UUID/],
      [['tasks', 'lst'], /unknown command 'lst'/],
      [['tasks', 'list', '--limit', '0'], /expected a whole number of at least 1/],
      [['tasks', 'list', '--state', 'stuck'], /expected one of pending, running, sleeping, completed, failed, cancelled/],
      [['tasks', 'list', '--bogus'], /unknown option '--bogus'/],
      [['events', 'emit', 'x', '{bad'], /expected JSON/],
      [['cleanup'], /required option '--older-than <duration>' not specified/],
      [['cleanup', '--older-than', 'soon'], /expected a duration such as 30s/],
      [['tasks'], /Usage: nestjs-durable tasks/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    for (const [i, result] of results.entries()) {
      expect({ args: cases[i][0], code: result.code, stdout: result.stdout }).toEqual({ args: cases[i][0], code: 2, stdout: '' });
      expect(result.stderr).toMatch(cases[i][1]);
    }
    const noDatabase = await run(process.execPath, [bin, 'tasks', 'list'], baseEnv);
    expect(noDatabase).toMatchObject({ code: 2, stdout: '' });
    expect(noDatabase.stderr).toMatch(/no database given: set DURABLE_DATABASE_URL or pass --database-url/);
  });

  it('a database it cannot reach is exit 1, saying what to check, and never prints the password', async () => {
    const password = 'Sup3r-s3cret-pw';
    const url = `postgres://durable:${password}@127.0.0.1:1/nowhere`;
    for (const result of [await cli('--database-url', url, 'tasks', 'list'), await run(process.execPath, [bin, '--json', 'migrate'], { ...baseEnv, DURABLE_DATABASE_URL: url })]) {
      expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 1, stdout: '' });
      expect(result.stderr).toContain('could not connect to postgres://durable:***@127.0.0.1:1/nowhere');
      expect(result.stderr).toContain('Check the URL (--database-url or DURABLE_DATABASE_URL)');
      expect(result.stderr).not.toContain(password);
    }
    const garbage = await cli('--database-url', `mysql://u:${password}@host/db`, 'tasks', 'list');
    expect({ code: garbage.code, stdout: garbage.stdout }).toEqual({ code: 2, stdout: '' });
    expect(garbage.stderr).toContain('databaseUrl is not a valid URL');
    expect(garbage.stderr).not.toContain(password);
  });

  it('a schema without durable\'s tables says to run migrate (exit 1)', async () => {
    const result = await cli('--schema', 'elsewhere', 'tasks', 'list');
    expect({ code: result.code, stdout: result.stdout }).toEqual({ code: 1, stdout: '' });
    expect(result.stderr).toContain('The schema "elsewhere" has no durable tables, or older ones: run `nestjs-durable migrate`');
    const missing = await cli('--schema', 'no_such_schema', 'queues', 'stats');
    expect({ code: missing.code, stdout: missing.stdout }).toEqual({ code: 1, stdout: '' });
    expect(missing.stderr).toContain('The schema "no_such_schema" has no durable tables, or older ones: run `nestjs-durable migrate`');
  });

  it('queues stats prints the counts per queue and state, as a table and as JSON', async () => {
    const stats = await cli('--json', 'queues', 'stats');
    expect({ code: stats.code, stderr: stats.stderr }).toEqual({ code: 0, stderr: '' });
    const rows = JSON.parse(stats.stdout) as { queue: string; pending: number }[];
    expect(rows.map((row) => row.queue)).toEqual(expect.arrayContaining(['default', 'parked']));
    const parked = rows.find((row) => row.queue === 'parked')!;
    expect(parked.pending).toBeGreaterThan(0);
    const table = await cli('queues', 'stats', '--queue', 'parked');
    expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(/^QUEUE\s+PENDING/);
    expect(table.stdout).toContain('parked');
    expect(table.stdout).not.toContain('default');
  });

  it('schedules list prints the schedules with their next run, as a table and as JSON', async () => {
    await app!.client.schedule('nightly-story', { cron: '0 2 * * *', task: 'story', params: { id: 9 }, timezone: 'Europe/Paris' });
    try {
      const schedules = await cli('--json', 'schedules', 'list');
      expect({ code: schedules.code, stderr: schedules.stderr }).toEqual({ code: 0, stderr: '' });
      const rows = JSON.parse(schedules.stdout) as { name: string; nextRunAt: string }[];
      expect(rows).toEqual([expect.objectContaining({
        name: 'nightly-story', cron: '0 2 * * *', taskName: 'story', timezone: 'Europe/Paris', params: { id: 9 },
      })]);
      expect(new Date(rows[0].nextRunAt).getTime()).toBeGreaterThan(Date.now());
      const table = await cli('schedules', 'list');
      expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: '' });
      expect(table.stdout).toMatch(/^NAME\s+CRON/);
      expect(table.stdout).toContain('nightly-story');
    } finally {
      await app!.client.unschedule('nightly-story');
    }
    expect(JSON.parse((await cli('--json', 'schedules', 'list')).stdout)).toEqual([]);
  });

  it('cleanup deletes terminal tasks older than --older-than, and they are gone (exit 1 to show)', async () => {
    const done = (await app!.client.listTasks({ state: 'completed' }))[0];
    expect(await json('cleanup', '--older-than', '7d')).toEqual({ deleted: 0 });
    const { deleted } = await json<{ deleted: number }>('cleanup', '--older-than', '0s');
    expect(deleted).toBeGreaterThanOrEqual(3);
    expect(await app!.client.getTask(done.taskId)).toBeNull();
    expect((await cli('tasks', 'show', done.taskId)).code).toBe(1);
    expect(await app!.client.listTasks({ state: 'sleeping' })).not.toEqual([]);
  });
});
