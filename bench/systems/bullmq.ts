/**
 * BullMQ on Redis (what @nestjs/bullmq runs), no-op jobs, on the benchmark's private
 * redis-server (appendonly yes, appendfsync always). A job counts as done on the worker's
 * 'completed' event, which fires once Redis has recorded the completion.
 */
import { flowDrain } from './bullmq-flow.js';
import { flowRow } from './flow-rows.js';
import { installedVersion, now, Signals, sleep, type Cell, type CellContext, type SystemAdapter } from './types.js';

export function connection(ctx: CellContext) {
  const url = new URL(ctx.redisUrl ?? 'redis://127.0.0.1:6379');
  return { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };
}

/** One queue per cell (named after the cell's database), on a Redis emptied first. */
export const queueName = (ctx: CellContext) => `bench-${new URL(ctx.databaseUrl).pathname.slice(1)}`;

async function prefill(ctx: CellContext, n: number): Promise<void> {
  const { Queue } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const redis = new Redis(connection(ctx));
  await redis.flushall();
  await redis.quit();
  const queue = new Queue(queueName(ctx), { connection: connection(ctx) });
  try {
    for (let i = 0; i < n; i += 1000) {
      await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ name: 'noop', data: { i: i + j } })));
    }
  } finally {
    await queue.close();
  }
}

function drain(ctx: CellContext): Cell {
  let worker: { close(): Promise<void> } | undefined;
  return {
    prepare: () => prefill(ctx, ctx.n),
    async run() {
      const { Worker } = await import('bullmq');
      const w = new Worker(queueName(ctx), async () => {
        ctx.probe.started();
      }, { connection: connection(ctx), concurrency: Number(ctx.settings.concurrency ?? 10) });
      w.on('completed', () => ctx.probe.finished());
      w.on('error', (error: Error) => console.error(`[bullmq] ${error.message}`));
      worker = w;
      await ctx.probe.done;
    },
    close: async () => worker?.close(),
  };
}

function pickup(ctx: CellContext): Cell {
  const closers: (() => Promise<void>)[] = [];
  const started = new Signals<number>();
  return {
    prepare: () => prefill(ctx, 0),
    async run() {
      const { Queue, Worker } = await import('bullmq');
      const worker = new Worker(queueName(ctx), async (job) => {
        started.signal((job.data as { i: number }).i, now());
      }, { connection: connection(ctx), concurrency: Number(ctx.settings.concurrency ?? 10) });
      const queue = new Queue(queueName(ctx), { connection: connection(ctx) });
      closers.push(() => worker.close(), () => queue.close());
      await worker.waitUntilReady();
      await sleep(1000);
      const samples: number[] = [];
      for (let i = 0; i < ctx.n; i += 1) {
        const t0 = now();
        await queue.add('noop', { i });
        samples.push((await started.wait(i)) - t0);
        await sleep(5);
      }
      return samples;
    },
    close: async () => {
      for (const close of closers) await close();
    },
  };
}

export const system: SystemAdapter = {
  id: 'bullmq',
  title: 'BullMQ (Redis)',
  note: 'BullMQ: no-op jobs on a private redis-server with appendonly yes, appendfsync always; its "WAL B/task" is AOF bytes/task and its server CPU is redis-server\'s',
  needsRedis: true,
  async availability() {
    const version = await installedVersion('bullmq');
    if (!version) return { label: 'BullMQ', notRun: 'bullmq is not installed (npm install)' };
    const ioredis = await installedVersion('ioredis');
    if (!ioredis) return { label: `bullmq ${version}`, notRun: 'ioredis (the Redis driver BullMQ loads) is not installed' };
    return { label: `bullmq ${version} (ioredis ${ioredis})` };
  },
  cells: { 'drain-0': drain, pickup, flow: flowDrain },
  rows: [
    { scenario: 'drain-0', candidates: [{ concurrency: 10 }, { concurrency: 50 }, { concurrency: 100 }, { concurrency: 200 }] },
    { scenario: 'pickup', maxN: 200, candidates: [{ concurrency: 10 }] },
    // Flow control in open-source BullMQ: priorities, Queue.setGlobalConcurrency, the Worker's limiter. Groups are BullMQ Pro only.
    ...(['unlimited', 'priorities', 'global', 'rateFree', 'rate'] as const).map((mode) => flowRow(mode, { concurrency: 200 })),
  ],
};
