/**
 * The 1-step drain of nestjs-durable with many completed tasks kept in its tables (BENCH_MILLION,
 * default 1,000,000; BENCH_QUICK: 20,000): a service that has run for months without cleanup.
 * prepare() writes the kept tasks with SQL (a completed task, its completed run and its step's
 * checkpoint, as a drain leaves them), VACUUM ANALYZE, then spawns the N tasks to drain. After the
 * window, `extra` has the latency of `client.stats()` and `client.listTasks()` on those tables.
 */
import type { INestApplicationContext } from '@nestjs/common';
import pg from 'pg';
import { DurableClient } from '../../lib/index.js';
import { percentile } from '../support/stats.js';
import { prefill, setProbe, startApp } from './durable.js';
import { now, sleep, type Cell, type CellContext, type CellOutcome } from './types.js';

export const KEPT = Number(process.env.BENCH_MILLION ?? (process.env.BENCH_QUICK === '1' ? 20_000 : 1_000_000));

async function keep(databaseUrl: string, count: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (let from = 1; from <= count; from += 250_000) {
      const to = Math.min(count, from + 249_999);
      await client.query(`
        with t as (
          insert into durable.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry, run_id, result,
                                     created_at, updated_at, first_started_at, finished_at)
          select gen_random_uuid(), 'default', 'bench-steps', '{"steps":1}', '{}', 'completed', 1, 1, '{"kind":"none"}',
                 gen_random_uuid(), 'null', now() - interval '30 days' + (g || ' ms')::interval, now() - interval '30 days',
                 now() - interval '30 days', now() - interval '30 days'
          from generate_series($1::int, $2::int) g
          returning id, run_id, created_at
        ), r as (
          insert into durable.runs (id, task_id, queue, attempt, state, available_at, created_at, started_at, finished_at)
          select run_id, id, 'default', 1, 'completed', created_at, created_at, created_at, created_at from t
          returning task_id
        )
        insert into durable.checkpoints (task_id, name, value, attempt, created_at)
        select task_id, 's0', '0', 1, now() - interval '30 days' from r`, [from, to]);
    }
    await client.query('vacuum analyze durable.tasks, durable.runs, durable.checkpoints');
  } finally {
    await client.end();
  }
}

async function timed(fn: () => Promise<unknown>, runs: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i += 1) {
    const t0 = now();
    await fn();
    times.push(now() - t0);
  }
  return percentile(times, 50);
}

export function millionCell(ctx: CellContext): Cell {
  let app: INestApplicationContext | undefined;
  let since: Date;
  return {
    async prepare() {
      const client = await DurableClient.connect({ databaseUrl: ctx.databaseUrl, logger: { log: () => undefined, warn: () => undefined, error: console.error } });
      await client.close();
      await keep(ctx.databaseUrl, KEPT);
      since = new Date(Date.now() - 1000);
      await prefill(ctx.databaseUrl, ctx.n, 1);
    },
    async run() {
      setProbe(ctx.probe);
      app = await startApp(ctx.databaseUrl, { concurrency: Number(ctx.settings.concurrency ?? 10) });
      await ctx.probe.done;
      await drained(ctx.databaseUrl, ctx.n, since);
      const endedAt = now();
      const client = app.get(DurableClient);
      await client.stats(); // folds pending counter deltas once, as the first call after a drain does
      const extra = {
        keptTasks: KEPT,
        statsP50Ms: await timed(() => client.stats(), 20),
        listTasksP50Ms: await timed(() => client.listTasks(), 20),
        listTasksCompletedP50Ms: await timed(() => client.listTasks({ state: 'completed', limit: 50 }), 20),
      };
      return { endedAt, extra } satisfies CellOutcome;
    },
    close: async () => app?.close(),
  };
}

/** The n tasks spawned after `since` are all completed, as stored (an index range, not 1M rows). */
async function drained(databaseUrl: string, n: number, since: Date): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (;;) {
      const { rows } = await client.query(`select count(*)::int as n from durable.tasks where created_at >= $1 and state = 'completed'`, [since]);
      if (rows[0].n >= n) return;
      await sleep(5);
    }
  } finally {
    await client.end();
  }
}
