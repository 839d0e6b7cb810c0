/**
 * The worker's status and observer port (`DurableWorkerMonitor`): what health checks, telemetry
 * and the dashboard hang off. Each event is checked against what the database recorded.
 */
import {
  DurableTask, DurableWorkerMonitor, NonRetryableError,
  type DurableTaskHandler, type ObservedRun, type TaskContext,
} from '../../lib/index.js';
import { eventually, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let releaseBlocker: (() => void) | undefined;

@DurableTask({ name: 'two-steps' })
class TwoStepsTask implements DurableTaskHandler<unknown, number> {
  async run(_params: unknown, ctx: TaskContext) {
    const a = await ctx.step('a', () => 1);
    return ctx.step('b', () => a + 1);
  }
}

@DurableTask({ name: 'broken', maxAttempts: 1 })
class BrokenTask implements DurableTaskHandler<unknown, never> {
  async run(): Promise<never> {
    throw new NonRetryableError('broken on purpose');
  }
}

@DurableTask({ name: 'blocker' })
class BlockerTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    await new Promise<void>((resolve) => { releaseBlocker = resolve; });
    return ctx.step('after', () => 'never');
  }
}

type Heard = [event: string, taskId: string, detail?: unknown];

describe('DurableWorkerMonitor', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let monitor: DurableWorkerMonitor;
  const heard: Heard[] = [];
  const of = (taskId: string) => heard.filter(([, id]) => id === taskId).map(([event, , detail]) => [event, detail]);

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [TwoStepsTask, BrokenTask, BlockerTask], { worker: { concurrency: 3, workerId: 'monitored' } });
    monitor = t.app.get(DurableWorkerMonitor);
    const record = (event: string) => (run: ObservedRun, detail?: unknown) => heard.push([event, run.taskId, detail]);
    monitor.observe({
      onClaim: record('claim'),
      onStep: (run, step) => heard.push(['step', run.taskId, step.name]),
      onComplete: record('complete'),
      onFailure: (run, error) => heard.push(['failure', run.taskId, (error as Error).message]),
      onLeaseLost: record('lease-lost'),
    });
  });
  afterAll(async () => {
    releaseBlocker?.();
    await t?.close();
    await db?.drop();
  });

  it('reports a running worker with its settings and a recent claim', async () => {
    const status = await eventually(() => (monitor.status().lastClaimAt ? monitor.status() : undefined), 5000, 'a first claim');
    expect(status).toMatchObject({ state: 'running', workerId: 'monitored', queues: ['default'], concurrency: 3, inFlight: 0 });
    expect(status.lastError).toBeUndefined();
  });

  it('hears a claim, each step and the completion, in order', async () => {
    const { taskId } = await t.client.spawn(TwoStepsTask, {});
    await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe(2);
    await eventually(() => of(taskId).some(([event]) => event === 'complete'), 5000, 'the completion');
    expect(of(taskId).map(([event, detail]) => (event === 'step' ? `step:${String(detail)}` : event)))
      .toEqual(['claim', 'step:a', 'step:b', 'complete']);
  });

  it('hears a failure with the thrown error', async () => {
    const { taskId } = await t.client.spawn(BrokenTask, {});
    await eventually(async () => (await t.client.getTask(taskId))?.state === 'failed', 10_000, 'the failure');
    await eventually(() => of(taskId).length === 2, 5000, 'the failure event');
    expect(of(taskId)).toEqual([['claim', undefined], ['failure', 'broken on purpose']]);
  });

  it('counts a running handler in flight, and hears the lease loss when it is cancelled', async () => {
    const { taskId } = await t.client.spawn(BlockerTask, {});
    await eventually(() => monitor.status().inFlight === 1, 10_000, 'the blocker in flight');
    await t.client.cancel(taskId);
    releaseBlocker!();
    await eventually(() => monitor.status().inFlight === 0, 10_000, 'the blocker to stop');
    expect(of(taskId).map(([event]) => event)).toEqual(['claim', 'lease-lost']);
    expect((await t.client.getTask(taskId))?.state).toBe('cancelled');
  });

  it('keeps the worker going when an observer throws', async () => {
    const stop = monitor.observe({ onClaim: () => { throw new Error('observer bug'); } });
    try {
      const { taskId } = await t.client.spawn(TwoStepsTask, {});
      await expect(t.client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe(2);
    } finally {
      stop();
    }
  });

  it('reports stopped after the app closes', async () => {
    const other = await startApp(db.url, [], { worker: { queues: ['elsewhere'] } });
    const otherMonitor = other.app.get(DurableWorkerMonitor);
    expect(otherMonitor.status().state).toBe('running');
    await other.close();
    expect(otherMonitor.status().state).toBe('stopped');
  });

  it('reports no worker in a producer-only app', async () => {
    const producer = await startApp(db.url, [], { worker: false });
    try {
      expect(producer.app.get(DurableWorkerMonitor).status()).toMatchObject({ state: 'none', inFlight: 0 });
    } finally {
      await producer.close();
    }
  });
});
