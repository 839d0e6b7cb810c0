/**
 * pg-boss 12, a plain job queue: no checkpoints. Each row in the configuration its docs recommend:
 * - drains through `work()` with batch fetching (`batchSize`), several fetch loops per process
 *   (`localConcurrency`) and `burstWhenBatchFull` (fetch again at once while batches come back
 *   full, instead of waiting out the polling interval); the handler gets the batch, and pg-boss
 *   completes it in one statement when the handler resolves. The "fetch loop" row drives
 *   `fetch({ batchSize })` + `complete(ids)` by hand, as the bench did for pg-boss 10;
 * - pickup with LISTEN/NOTIFY (`useListenNotify` on the instance, `notify: true` on the queue,
 *   new in pg-boss 12), polling at its 0.5 s minimum as the backstop.
 * pg-boss 12 declares Node >= 22.12 in `engines`; it runs on Node 20 (npm prints EBADENGINE).
 */
import pg from 'pg';
import { flowDrain } from './pg-boss-flow.js';
import { flowRow } from './flow-rows.js';
import { IDLE_SECONDS, IDLE_SETTLE, installedVersion, now, Signals, sleep, type Cell, type CellContext, type SystemAdapter } from './types.js';

export const QUEUE = 'bench';

// pg-boss 12 is an ES module with a named export (10 was CommonJS, its module the class).
async function loadPgBoss(): Promise<any> {
  const mod: any = await import('pg-boss');
  return mod.PgBoss ?? mod.default?.PgBoss ?? mod.default ?? mod;
}

export async function newBoss(databaseUrl: string, extra: Record<string, unknown> = {}): Promise<any> {
  const PgBoss = await loadPgBoss();
  const boss = new PgBoss({ connectionString: databaseUrl, ...extra });
  boss.on('error', (error: Error) => console.error(`[pg-boss] ${error.message}`));
  await boss.start();
  return boss;
}

async function createQueue(databaseUrl: string, notify: boolean): Promise<void> {
  const boss = await newBoss(databaseUrl, { supervise: false, schedule: false });
  try {
    await boss.createQueue(QUEUE, notify ? { notify: true } : {});
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

async function prefill(databaseUrl: string, n: number): Promise<void> {
  const boss = await newBoss(databaseUrl, { supervise: false, schedule: false });
  try {
    await boss.createQueue(QUEUE);
    for (let i = 0; i < n; i += 1000) {
      const jobs = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ data: { i: i + j } }));
      await boss.insert(QUEUE, jobs);
    }
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

/** Waits until every job of the queue is completed, as stored (checked after the last handler). */
export async function allCompleted(databaseUrl: string, n: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (;;) {
      const { rows } = await client.query(`select count(*)::int as n from pgboss.job where name = $1 and state = 'completed'`, [QUEUE]);
      if (rows[0].n >= n) return;
      await sleep(5);
    }
  } finally {
    await client.end();
  }
}

/**
 * `work()` as its docs recommend for throughput. `concurrency` (if given) is the number of jobs
 * in hand at once: batchSize x localConcurrency (the distance rows compare it with ours).
 */
function workDrain(ctx: CellContext): Cell {
  let boss: any;
  const batchSize = Number(ctx.settings.batchSize ?? 50);
  const localConcurrency = ctx.settings.concurrency !== undefined
    ? Math.max(1, Math.round(Number(ctx.settings.concurrency) / batchSize))
    : Number(ctx.settings.localConcurrency ?? 4);
  return {
    prepare: () => prefill(ctx.databaseUrl, ctx.n),
    async run() {
      boss = await newBoss(ctx.databaseUrl, { max: Math.max(10, localConcurrency + 4) });
      await boss.work(QUEUE, { batchSize, localConcurrency, burstWhenBatchFull: true, pollingIntervalSeconds: 0.5 }, async (jobs: unknown[]) => {
        ctx.probe.started();
        // The no-op handler runs here, once per job; pg-boss completes the batch when this resolves.
        ctx.probe.finished(jobs.length);
      });
      await ctx.probe.done;
      await allCompleted(ctx.databaseUrl, ctx.n);
    },
    close: async () => boss?.stop({ graceful: false, wait: true }),
  };
}

/** `fetch({ batchSize })` + `complete(ids)` loops by hand (no polling interval at all). */
function fetchDrain(ctx: CellContext): Cell {
  let boss: any;
  const batchSize = Number(ctx.settings.batchSize ?? 50);
  const loops = Number(ctx.settings.loops ?? 4);
  return {
    prepare: () => prefill(ctx.databaseUrl, ctx.n),
    async run() {
      boss = await newBoss(ctx.databaseUrl, { max: Math.max(10, loops + 2) });
      await Promise.all(Array.from({ length: loops }, async () => {
        while (ctx.probe.count < ctx.n) {
          const jobs: { id: string }[] = await boss.fetch(QUEUE, { batchSize });
          if (jobs.length === 0) {
            if (ctx.probe.count >= ctx.n) return;
            await sleep(1); // the others hold the last jobs
            continue;
          }
          ctx.probe.started();
          await boss.complete(QUEUE, jobs.map((job) => job.id));
          ctx.probe.finished(jobs.length);
        }
      }));
      await allCompleted(ctx.databaseUrl, ctx.n);
    },
    close: async () => boss?.stop({ graceful: false, wait: true }),
  };
}

function pickup(ctx: CellContext): Cell {
  let boss: any;
  const started = new Signals<number>();
  return {
    prepare: () => createQueue(ctx.databaseUrl, true),
    async run() {
      boss = await newBoss(ctx.databaseUrl, { useListenNotify: true });
      await boss.work(QUEUE, { pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 30 }, async (jobs: { data: { i: number } }[]) => {
        for (const job of jobs) started.signal(job.data.i, now());
      });
      await sleep(1000);
      const samples: number[] = [];
      for (let i = 0; i < ctx.n; i += 1) {
        const t0 = now();
        await boss.send(QUEUE, { i });
        samples.push((await started.wait(i)) - t0);
        // A random pause, so that sends do not fall at one phase of the backstop polling.
        await sleep(5 + Math.random() * 50);
      }
      return samples;
    },
    close: async () => boss?.stop({ graceful: false, wait: true }),
  };
}

/** One idle `work()` on one queue (LISTEN/NOTIFY on, as for pickup): what polling alone costs. */
function idle(ctx: CellContext): Cell {
  let boss: any;
  return {
    prepare: () => createQueue(ctx.databaseUrl, true),
    async run() {
      boss = await newBoss(ctx.databaseUrl, { useListenNotify: true });
      await boss.work(QUEUE, {}, async () => undefined);
      await sleep(IDLE_SETTLE * 1000);
      ctx.probe.started();
      await sleep(IDLE_SECONDS * 1000);
      return { extra: {} };
    },
    close: async () => boss?.stop({ graceful: false, wait: true }),
  };
}

export const system: SystemAdapter = {
  id: 'pg-boss',
  title: 'pg-boss',
  note: 'pg-boss: no-op jobs, no checkpoints; "work batch" = work({ batchSize, localConcurrency, burstWhenBatchFull }) (its documented throughput setup); "fetch loop" = fetch({ batchSize }) + complete(ids) by hand; pickup with LISTEN/NOTIFY (useListenNotify + queue notify). pg-boss 12 declares Node >= 22.12 (runs on Node 20 with an EBADENGINE warning)',
  async availability() {
    const version = await installedVersion('pg-boss');
    return version ? { label: `pg-boss ${version}` } : { label: 'pg-boss', notRun: 'pg-boss is not installed (npm install)' };
  },
  cells: { 'drain-0': workDrain, 'drain-0-fetch': fetchDrain, distance: workDrain, pickup, idle, flow: flowDrain },
  rows: [
    {
      scenario: 'drain-0', variant: 'work batch',
      candidates: [{ batchSize: 50, localConcurrency: 2 }, { batchSize: 50, localConcurrency: 4 }, { batchSize: 100, localConcurrency: 4 }, { batchSize: 200, localConcurrency: 2 }],
    },
    { scenario: 'drain-0-fetch', variant: 'fetch loop', candidates: [{ batchSize: 50, loops: 4 }, { batchSize: 100, loops: 8 }] },
    // 200 samples: LISTEN/NOTIFY wakes the worker.
    { scenario: 'pickup', maxN: 200 },
    { scenario: 'idle', variant: '1 queue', runs: 1 },
    { scenario: 'distance', variant: 'c50 loopback', candidates: [{ concurrency: 50, batchSize: 50 }] },
    { scenario: 'distance', variant: 'c50 2ms RTT', candidates: [{ concurrency: 50, batchSize: 50, rttMs: 2 }] },
    { scenario: 'distance', variant: 'c200 loopback', candidates: [{ concurrency: 200, batchSize: 50 }] },
    { scenario: 'distance', variant: 'c200 2ms RTT', candidates: [{ concurrency: 200, batchSize: 50, rttMs: 2 }] },
    // Flow control: groups (`group: { id }` + `groupConcurrency`, global across nodes) and priorities; no rate limit in pg-boss.
    ...(['unlimited', 'priorities', 'global'] as const).map((mode) => flowRow(mode, { batchSize: 50, localConcurrency: 4 })),
    flowRow('groups', { batchSize: 10, localConcurrency: 20 }, { batchSize: 50, localConcurrency: 4 }, { batchSize: 2, localConcurrency: 50 }),
  ],
};
