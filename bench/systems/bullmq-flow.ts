/**
 * BullMQ 6.7's `flow` rows (bench/systems/flow-rows.ts), with what open-source BullMQ offers:
 * job `priority` (1 = highest; 0 = none, the plain wait list), `Queue.setGlobalConcurrency`
 * (active jobs across every worker of the queue) and the Worker's `limiter: { max, duration }`
 * (a rate limit shared by every worker of the queue, kept in Redis). Groups (a limit per group
 * key) are a BullMQ Pro feature (commercial), so there is no groups row.
 */
import { connection, queueName } from './bullmq.js';
import type { Cell, CellContext, Settings } from './types.js';

function jobOptions(settings: Settings, i: number): Record<string, unknown> {
  // BullMQ: the lower the number, the higher the priority; 1..5 for our 4..0.
  return ['priorities', 'global'].includes(String(settings.mode)) ? { priority: 5 - ((i * 7) % 5) } : {};
}

export function flowDrain(ctx: CellContext): Cell {
  let worker: { close(): Promise<void> } | undefined;
  return {
    async prepare() {
      const { Queue } = await import('bullmq');
      const { Redis } = await import('ioredis');
      const redis = new Redis(connection(ctx));
      await redis.flushall();
      await redis.quit();
      const queue = new Queue(queueName(ctx), { connection: connection(ctx) });
      try {
        if (ctx.settings.mode === 'global') await queue.setGlobalConcurrency(Number(ctx.settings.limit ?? 100));
        for (let i = 0; i < ctx.n; i += 1000) {
          await queue.addBulk(Array.from({ length: Math.min(1000, ctx.n - i) }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts: jobOptions(ctx.settings, i + j) })));
        }
      } finally {
        await queue.close();
      }
    },
    async run() {
      const { Worker } = await import('bullmq');
      const limiter = ctx.settings.mode === 'rate' ? { limiter: { max: Number(ctx.settings.max), duration: Number(ctx.settings.perMs) } } : {};
      const w = new Worker(queueName(ctx), async () => {
        ctx.probe.started();
      }, { connection: connection(ctx), concurrency: Number(ctx.settings.concurrency ?? 200), ...limiter });
      w.on('completed', () => ctx.probe.finished());
      w.on('error', (error: Error) => console.error(`[bullmq] ${error.message}`));
      worker = w;
      await ctx.probe.done;
    },
    close: async () => worker?.close(),
  };
}
