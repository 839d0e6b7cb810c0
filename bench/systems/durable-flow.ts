/**
 * The `flow` rows of nestjs-durable (issue 15): N no-op tasks drained by one worker under flow
 * control, beside the same drain without it. `settings.mode`:
 * - `none`: no limit, priority 0 (the row every ratio divides by);
 * - `priorities`: priorities 0..4 spread over the tasks;
 * - `groups`: `concurrency: perGroup` on the task with `groups` concurrency keys, and priorities;
 * - `global`: `concurrency: limit` on the task name (below the worker's own concurrency), and priorities;
 * - `rate`: `rateLimit: { max, perMs }`.
 * The task class is made per cell (its decorator takes the cell's limits).
 */
import 'reflect-metadata';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DurableClient, DurableModule, DurableTask, type DurableLogger, type DurableTaskOptions, type SpawnOptions } from '../../lib/index.js';
import { allCompleted } from './durable.js';
import { inParallel, type Cell, type CellContext, type Probe, type Settings } from './types.js';

const quiet: DurableLogger = { log: () => undefined, warn: (m) => console.warn(`[durable] ${m}`), error: (m) => console.error(`[durable] ${m}`) };
const NAME = 'bench-flow';
let probe: Probe | undefined;

function taskOptions(settings: Settings): DurableTaskOptions {
  const options: DurableTaskOptions = { name: NAME, retry: { kind: 'none' } };
  if (settings.mode === 'groups') options.concurrency = Number(settings.perGroup ?? 2);
  if (settings.mode === 'global') options.concurrency = Number(settings.limit ?? 100);
  if (settings.mode === 'rate') options.rateLimit = { max: Number(settings.max), perMs: Number(settings.perMs) };
  return options;
}

/** What the i-th spawn carries: a priority 0..4 (all modes but none and rate), a key (groups). */
export function spawnOptions(settings: Settings, i: number): SpawnOptions {
  const options: SpawnOptions = {};
  if (['priorities', 'groups', 'global'].includes(String(settings.mode))) options.priority = (i * 7) % 5;
  if (settings.mode === 'groups') options.concurrencyKey = `g${i % Number(settings.groups ?? 50)}`;
  return options;
}

export function flowCell(ctx: CellContext): Cell {
  let app: INestApplicationContext | undefined;
  class FlowTask {
    async run(): Promise<null> {
      probe?.started();
      probe?.finished();
      return null;
    }
  }
  DurableTask(taskOptions(ctx.settings))(FlowTask);
  return {
    async prepare() {
      const client = await DurableClient.connect({ databaseUrl: ctx.databaseUrl, logger: quiet });
      try {
        await inParallel(ctx.n, 200, (i) => client.spawn(NAME, {}, spawnOptions(ctx.settings, i)));
      } finally {
        await client.close();
      }
    },
    async run() {
      probe = ctx.probe;
      @Module({
        imports: [DurableModule.forRoot({ databaseUrl: ctx.databaseUrl, worker: { concurrency: Number(ctx.settings.concurrency ?? 200) } })],
        providers: [FlowTask],
      })
      class FlowBenchModule {}
      app = await NestFactory.createApplicationContext(FlowBenchModule, { logger: ['error', 'warn'] });
      await ctx.probe.done;
      await allCompleted(ctx.databaseUrl, ctx.n);
    },
    close: async () => app?.close(),
  };
}
