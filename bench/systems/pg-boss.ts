/**
 * pg-boss (v10: the last major that runs on Node 20), a plain job queue: no checkpoints.
 * Throughput uses its batch API as fast as it goes: `fetch(name, { batchSize })` then
 * `complete(name, ids)` in parallel loops (its `work()` waits for the polling interval between
 * batches, at least 0.5 s, which caps a worker at batchSize jobs per 0.5 s). The pickup latency
 * uses `work()` at the smallest polling interval pg-boss allows (0.5 s): it has no LISTEN.
 */
import pg from 'pg';
import { installedVersion, now, Signals, sleep, type Cell, type CellContext, type SystemAdapter } from './types.js';

const QUEUE = 'bench';

// pg-boss is CommonJS: its module is the class.
async function loadPgBoss(): Promise<any> {
  const mod: any = await import('pg-boss');
  return mod.default ?? mod;
}

async function newBoss(databaseUrl: string, extra: Record<string, unknown> = {}): Promise<any> {
  const PgBoss = await loadPgBoss();
  const boss = new PgBoss({ connectionString: databaseUrl, ...extra });
  boss.on('error', (error: Error) => console.error(`[pg-boss] ${error.message}`));
  await boss.start();
  return boss;
}

async function prefill(databaseUrl: string, n: number): Promise<void> {
  const boss = await newBoss(databaseUrl, { supervise: false, schedule: false });
  try {
    await boss.createQueue(QUEUE);
    for (let i = 0; i < n; i += 1000) {
      const jobs = Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ name: QUEUE, data: { i: i + j } }));
      await boss.insert(jobs);
    }
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

/** Waits until every job of the queue is completed, as stored (checked after the last handler). */
async function allCompleted(databaseUrl: string, n: number): Promise<void> {
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

function drain(ctx: CellContext): Cell {
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
          // The no-op handler runs here, once per job.
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
    prepare: async () => {
      const b = await newBoss(ctx.databaseUrl, { supervise: false, schedule: false });
      await b.createQueue(QUEUE);
      await b.stop({ graceful: false, wait: true });
    },
    async run() {
      boss = await newBoss(ctx.databaseUrl);
      const pollingIntervalSeconds = Number(ctx.settings.pollingIntervalSeconds ?? 0.5);
      await boss.work(QUEUE, { pollingIntervalSeconds }, async (jobs: { data: { i: number } }[]) => {
        for (const job of jobs) started.signal(job.data.i, now());
      });
      await sleep(1000);
      const samples: number[] = [];
      for (let i = 0; i < ctx.n; i += 1) {
        const t0 = now();
        await boss.send(QUEUE, { i });
        samples.push((await started.wait(i)) - t0);
        // A random pause, so that sends do not fall at one phase of the polling loop.
        await sleep(5 + Math.random() * pollingIntervalSeconds * 1000);
      }
      return samples;
    },
    close: async () => boss?.stop({ graceful: false, wait: true }),
  };
}

export const system: SystemAdapter = {
  id: 'pg-boss',
  title: 'pg-boss',
  note: 'pg-boss: no-op jobs, no checkpoints; drains with fetch({ batchSize }) + complete(ids) loops; pickup with work() at pollingIntervalSeconds 0.5 (its minimum; no LISTEN), sends at random phases of its polling',
  async availability() {
    const version = await installedVersion('pg-boss');
    return version ? { label: `pg-boss ${version}` } : { label: 'pg-boss', notRun: 'pg-boss is not installed (npm install)' };
  },
  cells: { 'drain-0': drain, pickup },
  rows: [
    { scenario: 'drain-0', variant: 'batch 50', candidates: [{ batchSize: 50, loops: 2 }, { batchSize: 50, loops: 4 }, { batchSize: 50, loops: 8 }] },
    { scenario: 'drain-0', variant: 'one by one', candidates: [{ batchSize: 1, loops: 8 }, { batchSize: 1, loops: 16 }], maxN: 2000 },
    // 50 samples: each waits for the next poll (0.5 s interval).
    { scenario: 'pickup', maxN: 50, candidates: [{ pollingIntervalSeconds: 0.5 }] },
  ],
};

