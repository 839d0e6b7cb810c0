/**
 * nestjs-durable through its public API: `DurableModule.forRoot` in a Nest application context,
 * `@DurableTask` classes, `DurableClient`. Handlers report to the cell's probe through module
 * state (the task classes have no constructor parameters: tsx emits no decorator metadata).
 */
import 'reflect-metadata';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pg from 'pg';
import {
  DurableClient, DurableModule, DurableTask, type DurableLogger, type TaskContext, type TaskHandle, type WorkerOptions,
} from '../../lib/index.js';
import {
  FANOUT_CHILDREN, inParallel, installedVersion, LastEnds, now, Signals, sleep, type Cell, type CellContext, type CellOutcome, type FanOutSamples,
  type Probe, type SystemAdapter,
} from './types.js';
import { idleCell } from './durable-idle.js';
import { millionCell } from './durable-million.js';
import { flowCell } from './durable-flow.js';
import { flowRow } from './flow-rows.js';

const quiet: DurableLogger = { log: () => undefined, warn: (m) => console.warn(`[durable] ${m}`), error: (m) => console.error(`[durable] ${m}`) };

// What the handlers report to. One cell runs per process, so module state is enough.
let probe: Probe | undefined;
export const setProbe = (value: Probe): void => {
  probe = value;
};
const pickups = new Signals<number>();
const suspended = new Signals<number>();
const resumed = new Signals<number>();
const sleepRequested = new Map<string, number>();
const woke = new Signals<string>();

@DurableTask({ name: 'bench-steps', retry: { kind: 'none' } })
export class StepsTask {
  async run(params: { steps: number }, ctx: TaskContext): Promise<null> {
    probe?.started();
    for (let i = 0; i < params.steps; i += 1) await ctx.step(`s${i}`, () => i);
    probe?.finished();
    return null;
  }
}

@DurableTask({ name: 'bench-pickup', retry: { kind: 'none' } })
export class PickupTask {
  async run(params: { i: number }): Promise<null> {
    pickups.signal(params.i, now());
    return null;
  }
}

@DurableTask({ name: 'bench-await', retry: { kind: 'none' } })
export class AwaitTask {
  async run(params: { i: number }, ctx: TaskContext): Promise<null> {
    try {
      await ctx.awaitEvent(`bench-event:${params.i}`);
    } catch (signal) {
      // The wait is committed when awaitEvent suspends the run (it rethrows its stop signal).
      suspended.signal(params.i, now());
      throw signal;
    }
    resumed.signal(params.i, now());
    return null;
  }
}

@DurableTask({ name: 'bench-sleep', retry: { kind: 'none' } })
export class SleepTask {
  async run(params: { ms: number }, ctx: TaskContext): Promise<null> {
    if (!sleepRequested.has(ctx.taskId)) sleepRequested.set(ctx.taskId, now() + params.ms);
    await ctx.sleepFor('nap', params.ms);
    woke.signal(ctx.taskId, now());
    return null;
  }
}

const childEnds = new LastEnds();
const fanIn = new Signals<number>();

@DurableTask({ name: 'bench-fan-child', retry: { kind: 'none' } })
export class FanChildTask {
  async run(params: { rep: number }, ctx: TaskContext): Promise<number> {
    await ctx.step('work', () => 1);
    childEnds.ended(params.rep);
    return 1;
  }
}

/** Spawns its children one after another (each spawn a checkpoint), then one joinAll: one suspension. */
@DurableTask({ name: 'bench-fan-parent', retry: { kind: 'none' } })
export class FanParentTask {
  async run(params: { rep: number; children: number }, ctx: TaskContext): Promise<number> {
    const handles: TaskHandle<number>[] = [];
    for (let i = 0; i < params.children; i += 1) handles.push(await ctx.spawn<number>(`c${i}`, 'bench-fan-child', { rep: params.rep }));
    const results = await ctx.joinAll(handles);
    fanIn.signal(params.rep, now());
    return results.length;
  }
}

const TASKS = [StepsTask, PickupTask, AwaitTask, SleepTask, FanChildTask, FanParentTask];

/** A Nest application context with durable's module and worker, as an app would boot it. */
export async function startApp(databaseUrl: string, worker: WorkerOptions | false, poolSize?: number): Promise<INestApplicationContext> {
  @Module({
    imports: [DurableModule.forRoot({ databaseUrl, worker, ...(poolSize ? { poolSize } : {}) })],
    providers: TASKS,
  })
  class BenchModule {}
  return NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
}

/** Applies the migrations (DurableClient.connect does) and spawns `n` tasks, 200 callers at once. */
export async function prefill(databaseUrl: string, n: number, steps: number, runAt?: Date): Promise<void> {
  const client = await DurableClient.connect({ databaseUrl, logger: quiet });
  try {
    await inParallel(n, 200, () => client.spawn('bench-steps', { steps }, runAt ? { runAt } : {}));
  } finally {
    await client.close();
  }
}

/** Waits until `n` tasks are completed as stored (checked after the last handler returned). */
export async function allCompleted(databaseUrl: string, n: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (;;) {
      const { rows } = await client.query(`select count(*)::int as n from durable.tasks where state = 'completed'`);
      if (rows[0].n >= n) return;
      await sleep(2);
    }
  } finally {
    await client.end();
  }
}

async function migrate(databaseUrl: string): Promise<void> {
  const client = await DurableClient.connect({ databaseUrl, logger: quiet });
  await client.close();
}

function workerOptions(ctx: CellContext): WorkerOptions {
  const options: WorkerOptions = { concurrency: Number(ctx.settings.concurrency ?? 10) };
  if (ctx.settings.pollIntervalMs !== undefined) options.pollIntervalMs = Number(ctx.settings.pollIntervalMs);
  return options;
}

function drain(steps: number) {
  return (ctx: CellContext): Cell => {
    let app: INestApplicationContext | undefined;
    return {
      prepare: () => prefill(ctx.databaseUrl, ctx.n, steps),
      async run() {
        probe = ctx.probe;
        app = await startApp(ctx.databaseUrl, workerOptions(ctx), ctx.settings.poolSize ? Number(ctx.settings.poolSize) : undefined);
        await ctx.probe.done;
        await allCompleted(ctx.databaseUrl, ctx.n);
      },
      close: async () => app?.close(),
    };
  };
}

/**
 * The 1-step drain while one REPEATABLE READ transaction holds its snapshot beside the workers
 * for the whole window, as a pg_dump (or a long report) does: no row version the drain makes
 * dead can be cleaned up meanwhile, so claims wade through them.
 */
function snapshotDrain(ctx: CellContext): Cell {
  let app: INestApplicationContext | undefined;
  let holder: pg.Client | undefined;
  return {
    prepare: () => prefill(ctx.databaseUrl, ctx.n, 1),
    async run() {
      probe = ctx.probe;
      holder = new pg.Client({ connectionString: ctx.databaseUrl });
      await holder.connect();
      await holder.query('begin isolation level repeatable read');
      await holder.query('select count(*) from durable.tasks'); // the snapshot is taken here
      app = await startApp(ctx.databaseUrl, workerOptions(ctx));
      await ctx.probe.done;
      await allCompleted(ctx.databaseUrl, ctx.n);
      const endedAt = now();
      await holder.query('rollback');
      return { endedAt } satisfies CellOutcome;
    },
    close: async () => {
      await holder?.end().catch(() => undefined);
      await app?.close();
    },
  };
}

function spawns(parallel: number) {
  return (ctx: CellContext): Cell => {
    let client: DurableClient | undefined;
    return {
      prepare: () => migrate(ctx.databaseUrl),
      async run() {
        client = await DurableClient.connect({ databaseUrl: ctx.databaseUrl, logger: quiet, migrationsRun: false });
        await client.getTask('00000000-0000-0000-0000-000000000000'); // connections warm
        ctx.probe.started();
        await inParallel(ctx.n, parallel, async () => {
          await client!.spawn('bench-steps', { steps: 1 });
          ctx.probe.finished();
        });
      },
      close: async () => client?.close(),
    };
  };
}

/** A worker with the default settings, idle, in a Nest app; the samples come from `sample`. */
function latencyCell(sample: (client: DurableClient, ctx: CellContext) => Promise<number[] | FanOutSamples>) {
  return (ctx: CellContext): Cell => {
    let app: INestApplicationContext | undefined;
    return {
      prepare: () => migrate(ctx.databaseUrl),
      async run() {
        app = await startApp(ctx.databaseUrl, workerOptions(ctx));
        await sleep(300); // the worker has polled once and waits
        return sample(app.get(DurableClient), ctx);
      },
      close: async () => app?.close(),
    };
  };
}

const pickupSamples = async (client: DurableClient, ctx: CellContext) => {
  const samples: number[] = [];
  for (let i = 0; i < ctx.n; i += 1) {
    const t0 = now();
    await client.spawn('bench-pickup', { i });
    samples.push((await pickups.wait(i)) - t0);
    await sleep(5);
  }
  return samples;
};

const emitSamples = async (client: DurableClient, ctx: CellContext) => {
  const samples: number[] = [];
  for (let i = 0; i < ctx.n; i += 1) {
    await client.spawn('bench-await', { i });
    await suspended.wait(i);
    await sleep(5); // the worker is idle again
    const t0 = now();
    await client.emitEvent(`bench-event:${i}`, { i });
    samples.push((await resumed.wait(i)) - t0);
  }
  return samples;
};

/** 100 ms sleeps started every 30 ms, so that a few overlap as in a real app. */
const sleepSamples = async (client: DurableClient, ctx: CellContext) => {
  const waits: Promise<number>[] = [];
  for (let i = 0; i < ctx.n; i += 1) {
    const { taskId } = await client.spawn('bench-sleep', { ms: 100 });
    waits.push(woke.wait(taskId).then((at) => at - sleepRequested.get(taskId)!));
    await sleep(30);
  }
  return Promise.all(waits);
};

/** Fan-outs one after another on an idle worker (its settings: the cell's). */
const fanOutSamples = async (client: DurableClient, ctx: CellContext) => {
  const samples: number[] = [];
  const totals: number[] = [];
  for (let rep = 0; rep < ctx.n; rep += 1) {
    const t0 = now();
    await client.spawn('bench-fan-parent', { rep, children: FANOUT_CHILDREN });
    const resumedAt = await fanIn.wait(rep, 600_000);
    samples.push(resumedAt - childEnds.of(rep));
    totals.push(resumedAt - t0);
    await sleep(200);
  }
  return { samples, totals };
};

export const system: SystemAdapter = {
  id: 'durable',
  title: 'nestjs-durable',
  async availability() {
    const { readFileSync } = await import('node:fs');
    const own = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return { label: `nestjs-durable ${own.version} (working tree; Nest ${(await installedVersion('@nestjs/core')) ?? '?'}, TypeORM ${(await installedVersion('typeorm')) ?? '?'})` };
  },
  cells: {
    'drain-0': drain(0),
    'drain-1': drain(1),
    'drain-3': drain(3),
    'spawn-seq': spawns(1),
    'spawn-batch': spawns(200),
    pickup: latencyCell(pickupSamples),
    emit: latencyCell(emitSamples),
    sleep: latencyCell(sleepSamples),
    idle: idleCell,
    fanout: latencyCell(fanOutSamples),
    million: millionCell,
    snapshot: snapshotDrain,
    distance: drain(1),
    flow: flowCell,
  },
  rows: [
    { scenario: 'drain-1', candidates: [{ concurrency: 200 }, { concurrency: 500 }, { concurrency: 1000 }] },
    { scenario: 'drain-0', settingsOf: 'drain-1' },
    { scenario: 'drain-3', settingsOf: 'drain-1' },
    { scenario: 'spawn-seq', maxN: 2000 },
    { scenario: 'spawn-batch' },
    { scenario: 'pickup', maxN: 200 },
    { scenario: 'emit', maxN: 200 },
    { scenario: 'sleep', maxN: 200 },
    // The server's own WAL and transactions with no worker at all (checkpointer, running-xacts records, autovacuum).
    { scenario: 'idle', variant: 'no worker (baseline)', runs: 1, candidates: [{ processes: 0 }] },
    { scenario: 'idle', variant: '1 queue', runs: 1, candidates: [{ processes: 1, queues: 1, names: 1 }] },
    { scenario: 'idle', variant: '20 queues, 50 names', runs: 1, candidates: [{ processes: 1, queues: 20, names: 50 }] },
    { scenario: 'idle', variant: '10 processes x 20 queues, 50 names', runs: 1, candidates: [{ processes: 10, queues: 20, names: 50 }] },
    { scenario: 'fanout', maxN: 5, candidates: [{ concurrency: 100 }] },
    { scenario: 'million', settingsOf: 'drain-1' },
    { scenario: 'snapshot', settingsOf: 'drain-1' },
    { scenario: 'distance', variant: 'c50 loopback', candidates: [{ concurrency: 50 }] },
    { scenario: 'distance', variant: 'c50 2ms RTT', candidates: [{ concurrency: 50, rttMs: 2 }] },
    { scenario: 'distance', variant: 'c200 loopback', candidates: [{ concurrency: 200 }] },
    { scenario: 'distance', variant: 'c200 2ms RTT', candidates: [{ concurrency: 200, rttMs: 2 }] },
    ...(['unlimited', 'priorities', 'groups', 'global', 'rateFree', 'rate'] as const).map((mode) => flowRow(mode, { concurrency: 200 })),
  ],
};
