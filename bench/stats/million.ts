/**
 * `client.stats()` on a table of 1,000,000 tasks (`npx tsx bench/stats/million.ts`): a scratch
 * database, tasks inserted with generate_series (through the counting triggers, as spawns
 * would be), then the median and p95 of `stats()` over 50 calls, beside a `count(*) ... group by`
 * scan for reference. BENCH_DATABASE_URL: the server's admin URL (default the local 5432).
 */
import { performance } from 'node:perf_hooks';
import { createDatabase, sqlPool } from '../../devkit/databases.js';
import { DurableClient } from '../../lib/index.js';

const N = Number(process.env.STATS_N ?? 1_000_000);
const admin = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function timed(fn: () => Promise<unknown>, runs: number): Promise<{ p50: number; p95: number }> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(runs / 2)], p95: times[Math.floor(runs * 0.95)] };
}

async function main(): Promise<void> {
  const db = await createDatabase(admin, { prefix: 'durable_stats' });
  const client = await DurableClient.connect({ databaseUrl: db.url, logger: { log: () => undefined, warn: console.warn, error: console.error } });
  const sql = sqlPool(db.url);
  try {
    const start = performance.now();
    // 4 queues; 98% completed, 1% failed, 0.5% cancelled, 0.4% pending (with runs), 0.1% sleeping.
    await sql.query(`
      insert into durable.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry, run_id, created_at, updated_at, finished_at)
      select gen_random_uuid(), 'q' || (g % 4), 'bench', '{}', '{}',
        case when g % 1000 < 980 then 'completed' when g % 1000 < 990 then 'failed' when g % 1000 < 995 then 'cancelled'
             when g % 1000 < 999 then 'pending' else 'sleeping' end,
        1, 5, '{"kind":"none"}', gen_random_uuid(), now() - (g || ' ms')::interval, now(),
        case when g % 1000 < 995 then now() end
      from generate_series(1, $1) g`, [N]);
    await sql.query(`
      insert into durable.runs (id, task_id, queue, attempt, state, available_at, created_at)
      select run_id, id, queue, 1, state, case when state = 'pending' then created_at else 'infinity' end, created_at
      from durable.tasks where state in ('pending', 'sleeping')`);
    await sql.query('vacuum analyze durable.tasks, durable.runs');
    const loadMs = performance.now() - start;
    await client.stats(); // folds the insert's deltas once
    const stats = await timed(() => client.stats(), 50);
    const one = await timed(() => client.stats({ queue: 'q1' }), 50);
    const scan = await timed(() => sql.query('select queue, state, count(*) from durable.tasks group by queue, state'), 5);
    const figures = await client.stats();
    console.log(JSON.stringify(figures));
    console.log(`${N.toLocaleString('en')} tasks (loaded in ${(loadMs / 1000).toFixed(1)} s)`);
    console.log(`stats() all queues: p50 ${stats.p50.toFixed(2)} ms, p95 ${stats.p95.toFixed(2)} ms`);
    console.log(`stats({ queue }):   p50 ${one.p50.toFixed(2)} ms, p95 ${one.p95.toFixed(2)} ms`);
    console.log(`reference scan (count(*) group by queue, state): p50 ${scan.p50.toFixed(0)} ms`);
  } finally {
    await sql.end();
    await client.close();
    await db.drop();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
