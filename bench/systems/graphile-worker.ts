/**
 * graphile-worker 0.18 (an ES module now; it declares Node >= 22.18 in `engines` and runs on
 * Node 20 with npm's EBADENGINE warning), a job queue on Postgres with LISTEN/NOTIFY: no-op jobs,
 * no checkpoints. Two rows: its defaults (one job fetched per worker slot) and the batching its
 * performance docs recommend for throughput (worker.graphile.org/docs/performance#batching):
 * `localQueue.size` (the pool locks a batch of jobs and hands them to its slots without a round
 * trip) and `completeJobBatchDelay` (completions batched).
 */
import pg from 'pg';
import { installedVersion, now, Signals, sleep, type Cell, type CellContext, type SystemAdapter } from './types.js';

const TASK = 'bench';
const quietLogger = async () => {
  const { Logger } = await import('graphile-worker');
  return new Logger(() => (level: string, message: string) => {
    if (level === 'error') console.error(`[graphile-worker] ${message}`);
  });
};

async function prefill(databaseUrl: string, n: number): Promise<void> {
  const { makeWorkerUtils } = await import('graphile-worker');
  const utils = await makeWorkerUtils({ connectionString: databaseUrl, logger: await quietLogger() });
  try {
    await utils.migrate();
    for (let i = 0; i < n; i += 1000) {
      await utils.addJobs(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ identifier: TASK, payload: { i: i + j } })));
    }
  } finally {
    await utils.release();
  }
}

function preset(settings: CellContext['settings']) {
  const worker: Record<string, unknown> = {};
  if (settings.localQueueSize) worker.localQueue = { size: Number(settings.localQueueSize) };
  if (settings.completeJobBatchDelay !== undefined) worker.completeJobBatchDelay = Number(settings.completeJobBatchDelay);
  return { worker };
}

/** Completed jobs are deleted: waits until none is left (checked after the last handler). */
async function noJobsLeft(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (;;) {
      const { rows } = await client.query('select count(*)::int as n from graphile_worker._private_jobs');
      if (rows[0].n === 0) return;
      await sleep(5);
    }
  } finally {
    await client.end();
  }
}

function drain(ctx: CellContext): Cell {
  let runner: { stop(): Promise<void> } | undefined;
  return {
    prepare: () => prefill(ctx.databaseUrl, ctx.n),
    async run() {
      const { run } = await import('graphile-worker');
      runner = await run({
        connectionString: ctx.databaseUrl,
        concurrency: Number(ctx.settings.concurrency ?? 10),
        maxPoolSize: Number(ctx.settings.concurrency ?? 10) + 2,
        noHandleSignals: true,
        logger: await quietLogger(),
        crontab: '',
        preset: preset(ctx.settings),
        taskList: {
          [TASK]: async () => {
            ctx.probe.started();
            ctx.probe.finished();
          },
        },
      } as never);
      await ctx.probe.done;
      await noJobsLeft(ctx.databaseUrl);
    },
    close: async () => runner?.stop(),
  };
}

function pickup(ctx: CellContext): Cell {
  let runner: { stop(): Promise<void>; addJob(identifier: string, payload: unknown): Promise<unknown> } | undefined;
  const started = new Signals<number>();
  return {
    prepare: () => prefill(ctx.databaseUrl, 0),
    async run() {
      const { run } = await import('graphile-worker');
      runner = (await run({
        connectionString: ctx.databaseUrl,
        concurrency: Number(ctx.settings.concurrency ?? 10),
        noHandleSignals: true,
        logger: await quietLogger(),
        crontab: '',
        taskList: { [TASK]: async (payload: unknown) => started.signal((payload as { i: number }).i, now()) },
      } as never)) as unknown as typeof runner;
      await sleep(1000);
      const samples: number[] = [];
      for (let i = 0; i < ctx.n; i += 1) {
        const t0 = now();
        await runner!.addJob(TASK, { i });
        samples.push((await started.wait(i)) - t0);
        await sleep(5);
      }
      return samples;
    },
    close: async () => runner?.stop(),
  };
}

export const system: SystemAdapter = {
  id: 'graphile-worker',
  title: 'graphile-worker',
  note: 'graphile-worker: no-op jobs, no checkpoints; "local queue" = worker.localQueue.size and completeJobBatchDelay (its documented batching mode); 0.18 declares Node >= 22.18 (runs on Node 20 with an EBADENGINE warning)',
  async availability() {
    const version = await installedVersion('graphile-worker');
    return version ? { label: `graphile-worker ${version}` } : { label: 'graphile-worker', notRun: 'graphile-worker is not installed (npm install)' };
  },
  cells: { 'drain-0': drain, pickup },
  rows: [
    // About 1,000 jobs/s: 30,000 keeps a run over 30 s without making the full run much longer.
    { scenario: 'drain-0', candidates: [{ concurrency: 10 }, { concurrency: 32 }], maxN: 30_000 },
    {
      scenario: 'drain-0', variant: 'local queue',
      candidates: [
        { concurrency: 32, localQueueSize: 200, completeJobBatchDelay: 0 },
        { concurrency: 64, localQueueSize: 500, completeJobBatchDelay: 0 },
        { concurrency: 64, localQueueSize: 500, completeJobBatchDelay: 250 },
      ],
    },
    { scenario: 'pickup', maxN: 200, candidates: [{ concurrency: 10 }] },
  ],
};
