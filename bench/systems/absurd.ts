/**
 * absurd (earendil-works/absurd), the durable-execution design nestjs-durable descends from,
 * through its TypeScript SDK `absurd-sdk`. The npm package ships only the client: absurd's SQL
 * schema is installed by `absurdctl` (a Python tool, from PyPI). So it runs only when
 * BENCH_ABSURD_SQL names the schema file (absurd.sql of the same release as the SDK); otherwise
 * the benchmark prints why it did not run.
 */
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { inParallel, installedVersion, now, Signals, sleep, type Cell, type CellContext, type SystemAdapter } from './types.js';

const QUEUE = 'bench';
const quiet = { log: () => undefined, info: () => undefined, warn: console.warn, error: console.error, debug: () => undefined };

async function applySchema(databaseUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(readFileSync(process.env.BENCH_ABSURD_SQL!, 'utf8'));
  } finally {
    await client.end();
  }
}

async function newApp(databaseUrl: string, hooks?: Record<string, unknown>): Promise<any> {
  const { Absurd } = await import('absurd-sdk' as string);
  const app = new Absurd({ db: databaseUrl, queueName: QUEUE, log: quiet, ...(hooks ? { hooks } : {}) });
  return app;
}

function register(app: any, probe?: CellContext['probe'], picked?: Signals<number>): void {
  app.registerTask({ name: 'steps', defaultMaxAttempts: 1 }, async (params: { steps: number }, ctx: any) => {
    probe?.started();
    for (let i = 0; i < params.steps; i += 1) await ctx.step(`s${i}`, async () => i);
    return null;
  });
  app.registerTask({ name: 'pickup', defaultMaxAttempts: 1 }, async (params: { i: number }) => {
    picked?.signal(params.i, now());
    return null;
  });
}

async function prefill(databaseUrl: string, n: number, steps: number): Promise<void> {
  await applySchema(databaseUrl);
  const app = await newApp(databaseUrl);
  try {
    register(app);
    await app.createQueue(QUEUE);
    await inParallel(n, 10, () => app.spawn('steps', { steps }));
  } finally {
    await app.close();
  }
}

function drain(steps: number) {
  return (ctx: CellContext): Cell => {
    let app: any;
    return {
      prepare: () => prefill(ctx.databaseUrl, ctx.n, steps),
      async run() {
        // Counted once the SDK has recorded the completion (complete_run committed).
        app = await newApp(ctx.databaseUrl, {
          wrapTaskExecution: async (_ctx: unknown, execute: () => Promise<void>) => {
            await execute();
            ctx.probe.finished();
          },
        });
        register(app, ctx.probe);
        await app.startWorker({ concurrency: Number(ctx.settings.concurrency ?? 10), pollInterval: Number(ctx.settings.pollInterval ?? 0.25), fatalOnLeaseTimeout: false });
        await ctx.probe.done;
      },
      close: async () => app?.close(),
    };
  };
}

function pickup(ctx: CellContext): Cell {
  let app: any;
  const picked = new Signals<number>();
  return {
    prepare: () => prefill(ctx.databaseUrl, 0, 0),
    async run() {
      app = await newApp(ctx.databaseUrl);
      register(app, undefined, picked);
      await app.startWorker({ concurrency: Number(ctx.settings.concurrency ?? 10), pollInterval: Number(ctx.settings.pollInterval ?? 0.25), fatalOnLeaseTimeout: false });
      await sleep(1000);
      const samples: number[] = [];
      for (let i = 0; i < ctx.n; i += 1) {
        const t0 = now();
        await app.spawn('pickup', { i });
        samples.push((await picked.wait(i)) - t0);
        // A random pause, so that spawns do not fall at one phase of the polling loop.
        await sleep(5 + Math.random() * Number(ctx.settings.pollInterval ?? 0.25) * 1000);
      }
      return samples;
    },
    close: async () => app?.close(),
  };
}

export const system: SystemAdapter = {
  id: 'absurd',
  title: 'absurd',
  note: 'absurd: absurd-sdk workers (startWorker: concurrency, pollInterval in s; it polls, no LISTEN), schema from BENCH_ABSURD_SQL',
  async availability() {
    const version = await installedVersion('absurd-sdk');
    if (!version) return { label: 'absurd', notRun: 'absurd-sdk is not installed (npm install)' };
    const schema = process.env.BENCH_ABSURD_SQL;
    if (!schema) {
      return {
        label: `absurd-sdk ${version}`,
        notRun: `absurd-sdk ${version} installs from npm but ships no SQL schema (absurdctl, a Python tool, installs it). ` +
          'Set BENCH_ABSURD_SQL to sql/absurd.sql of github.com/earendil-works/absurd (git clone it) to run these rows',
      };
    }
    if (!existsSync(schema)) return { label: `absurd-sdk ${version}`, notRun: `BENCH_ABSURD_SQL=${schema} does not exist` };
    return { label: `absurd-sdk ${version}, schema ${schema}` };
  },
  cells: { 'drain-1': drain(1), 'drain-3': drain(3), pickup },
  rows: [
    // About 250-450 tasks/s: 12,000 keeps a run over 30 s.
    { scenario: 'drain-1', maxN: 12_000, candidates: [{ concurrency: 10, pollInterval: 0.25 }, { concurrency: 50, pollInterval: 0.25 }] },
    { scenario: 'drain-3', maxN: 12_000, settingsOf: 'drain-1' },
    { scenario: 'pickup', maxN: 200, candidates: [{ concurrency: 10, pollInterval: 0.25 }] },
  ],
};
