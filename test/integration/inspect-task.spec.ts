/**
 * `DurableClient.inspectTask` against a real Postgres: a task's runs (attempt, state, worker,
 * times, error), its checkpoints in commit order with their kinds and values, its live event
 * waits, its children (capped, with the total), and the refusals.
 */
import type pg from 'pg';
import { InvalidArgumentError, type TaskContext } from '../../lib/index.js';
import { eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { durableTask } from '../helpers/durable-task.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const Kid = durableTask('Kid', { name: 'kid' }, async (_p: unknown, ctx: TaskContext) => {
  await ctx.awaitEvent('never');
});

const Story = durableTask('Story', { name: 'story', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 0 } },
  async (_p: unknown, ctx: TaskContext) => {
    await ctx.step('first', () => ({ n: 1 }));
    await ctx.step('nothing', () => undefined);
    if (ctx.attempt === 1) throw new Error('first attempt fails');
    await ctx.emitEvent('told', { by: 'story' });
    await ctx.spawn('kid-0', 'kid', {});
    await ctx.spawn('kid-1', 'kid', {});
    await ctx.step('second', () => 'two');
    await ctx.awaitEvent('go', { timeoutMs: 3_600_000 });
  });

describe('DurableClient.inspectTask', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let app: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    app = await startApp(db.url, [Kid, Story], { worker: { concurrency: 4, workerId: 'inspector' } });
  });
  afterAll(async () => {
    await app?.close();
    await sql?.end();
    await db?.drop();
  });

  it('shows the runs, the checkpoints in order, the event waits and the children', async () => {
    const { taskId } = await app.client.spawn('story');
    await eventually(async () => (await app.client.getTask(taskId))?.state === 'sleeping' && (await app.client.getTask(taskId))?.attempts === 2);
    const detail = (await app.client.inspectTask(taskId))!;

    expect(detail.task).toMatchObject({ taskId, name: 'story', state: 'sleeping', attempts: 2 });
    expect(detail.task.waitingFor).toMatchObject({ reason: 'event', eventName: 'go' });

    expect(detail.runs.map((r) => ({ attempt: r.attempt, state: r.state, workerId: r.workerId, error: r.error?.message ?? null }))).toEqual([
      { attempt: 1, state: 'failed', workerId: 'inspector', error: 'first attempt fails' },
      { attempt: 2, state: 'sleeping', workerId: 'inspector', error: null },
    ]);
    const [first, second] = detail.runs;
    expect(first.startedAt).toBeInstanceOf(Date);
    expect(first.finishedAt!.getTime()).toBeGreaterThanOrEqual(first.startedAt!.getTime());
    expect(second.finishedAt).toBeNull();
    expect(second.availableAt!.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
    expect(second.claims).toBe(1);

    expect(detail.checkpoints.map((c) => [c.name, c.kind, c.attempt])).toEqual([
      ['step:first', 'step', 1],
      ['step:nothing', 'step', 1],
      ['emit:told', 'emit', 2],
      ['spawn:kid-0', 'spawn', 2],
      ['spawn:kid-1', 'spawn', 2],
      ['step:second', 'step', 2],
    ]);
    expect(detail.checkpoints[0].value).toEqual({ n: 1 });
    expect('value' in detail.checkpoints[1] && detail.checkpoints[1].value).toBeUndefined();
    expect(detail.checkpoints[5].value).toBe('two');
    for (const [i, c] of detail.checkpoints.entries()) {
      expect(c.createdAt).toBeInstanceOf(Date);
      if (i > 0) expect(c.createdAt.getTime()).toBeGreaterThanOrEqual(detail.checkpoints[i - 1].createdAt.getTime());
    }

    expect(detail.eventWaits).toEqual([{
      eventName: 'go', queue: 'default', stepName: 'event:go', timeoutAt: expect.any(Date), createdAt: expect.any(Date), emittedAt: null,
    }]);
    expect(detail.childCount).toBe(2);
    expect(detail.children.map((c) => [c.name, c.queue])).toEqual([['kid', 'default'], ['kid', 'default']]);
    const handles = detail.checkpoints.filter((c) => c.kind === 'spawn').map((c) => (c.value as { taskId: string }).taskId);
    expect(detail.children.map((c) => c.taskId)).toEqual(handles);

    const capped = (await app.client.inspectTask(taskId, { childLimit: 1 }))!;
    expect({ listed: capped.children.map((c) => c.taskId), count: capped.childCount }).toEqual({ listed: [handles[0]], count: 2 });

    await app.client.emitEvent('go');
    await eventually(async () => (await app.client.getTask(taskId))?.state === 'completed');
    const done = (await app.client.inspectTask(taskId))!;
    expect(done.eventWaits).toEqual([]);
    expect(done.task.waitingFor).toBeNull();
    expect(done.checkpoints.at(-1)).toMatchObject({ name: 'event:go', kind: 'event', value: { payload: null } });
    expect(done.runs[1]).toMatchObject({ state: 'completed', claims: 2 });
  });

  it('null for an unknown id; InvalidArgumentError for a bad id or limit, with nothing read', async () => {
    expect(await app.client.inspectTask('00000000-0000-4000-8000-000000000000')).toBeNull();
    await expect(app.client.inspectTask('nope')).rejects.toThrow(InvalidArgumentError);
    await expect(app.client.inspectTask('00000000-0000-4000-8000-000000000000', { childLimit: 0 })).rejects.toThrow(InvalidArgumentError);
  });
});
