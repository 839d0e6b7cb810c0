/**
 * pg-boss 12's `flow` rows (bench/systems/flow-rows.ts): the `work()` drain of pg-boss.ts with
 * what pg-boss offers for flow control: job `priority` (work() fetches the highest first) and
 * groups (`group: { id }` on each job, `groupConcurrency` on work(): at most that many active
 * jobs per group across every node, tracked in the database). The `global` row is one group
 * for every job. pg-boss has no consumer-side rate limit (`singletonSeconds` throttles or
 * debounces at send time: it drops or defers sends, it does not pace a drain), so no rate row.
 */
import { allCompleted, newBoss, QUEUE } from './pg-boss.js';
import type { Cell, CellContext, Settings } from './types.js';

function job(settings: Settings, i: number): Record<string, unknown> {
  const out: Record<string, unknown> = { data: { i } };
  if (['priorities', 'groups', 'global'].includes(String(settings.mode))) out.priority = (i * 7) % 5;
  if (settings.mode === 'groups') out.group = { id: `g${i % Number(settings.groups ?? 50)}` };
  if (settings.mode === 'global') out.group = { id: 'all' };
  return out;
}

function groupConcurrency(settings: Settings): number | undefined {
  if (settings.mode === 'groups') return Number(settings.perGroup ?? 2);
  if (settings.mode === 'global') return Number(settings.limit ?? 100);
  return undefined;
}

export function flowDrain(ctx: CellContext): Cell {
  let boss: any;
  const batchSize = Number(ctx.settings.batchSize ?? 50);
  const localConcurrency = Number(ctx.settings.localConcurrency ?? 4);
  return {
    async prepare() {
      const b = await newBoss(ctx.databaseUrl, { supervise: false, schedule: false });
      try {
        await b.createQueue(QUEUE);
        for (let i = 0; i < ctx.n; i += 1000) {
          await b.insert(QUEUE, Array.from({ length: Math.min(1000, ctx.n - i) }, (_, j) => job(ctx.settings, i + j)));
        }
      } finally {
        await b.stop({ graceful: false, wait: true });
      }
    },
    async run() {
      boss = await newBoss(ctx.databaseUrl, { max: Math.max(10, localConcurrency + 4) });
      const limit = groupConcurrency(ctx.settings);
      await boss.work(QUEUE, {
        batchSize, localConcurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5, ...(limit !== undefined ? { groupConcurrency: limit } : {}),
      }, async (jobs: unknown[]) => {
        ctx.probe.started();
        ctx.probe.finished(jobs.length);
      });
      await ctx.probe.done;
      await allCompleted(ctx.databaseUrl, ctx.n);
    },
    close: async () => boss?.stop({ graceful: false, wait: true }),
  };
}
