/**
 * `npm run bench:flow` (`tsx bench/flow-control.ts`): what flow control costs the claim, in one
 * run on one server (issue 15).
 *
 * 1. Drains of N one-step tasks by one worker (concurrency 50), interleaved, medians of RUNS:
 *    - plain: no limit, priority 0 (the ordinary claim path);
 *    - priorities: priorities 0..4 at random (the claim visits the levels from the highest);
 *    - limits + priorities: the same, on a task name with a concurrency limit (never binding:
 *      1000) and 50 concurrency keys, so that every claim takes the limited path;
 *    - rate limit: a rate limit that never binds (each start is recorded in flow_starts).
 *    The table reports tasks/s and the ratio to plain.
 * 2. The claim's cost with a held backlog: H tasks of a name whose limit (1) is taken sit at the
 *    head of the queue; claims of 1 (committed: each leaves its hand for the next) until the
 *    runnable task behind them is claimed, for H = 0, 1000, 10000: how many, and their times.
 * 3. A claim that comes up short with S sleeping runs in the queue, for S = 0, 20000.
 * 4. One claim of up to 200 runs (timed alone, rolled back) on each path: plain, a rate limit that
 *    never binds, a concurrency limit of 100 on the name, 2 per key over 50 keys (issue 15: where
 *    the limited drains of `npm run bench` scenario `flow` spend their time).
 * 5. EXPLAIN of the ordinary claim's candidate scan with a backlog: an index scan with a LIMIT,
 *    no sort.
 *
 * BENCH_DATABASE_URL (admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
 * BENCH_FLOW_N (5000), BENCH_RUNS (3), BENCH_FLOW_ONLY=claims (parts 2-5 only).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createDatabase, dropDatabase, sqlPool } from '../devkit/databases.js';
import { DurableClient, DurableModule, DurableTask, type DurableLogger, type SpawnOptions, type TaskContext } from '../lib/index.js';

const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N = Number(process.env.BENCH_FLOW_N ?? 5000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const quiet: DurableLogger = { log: () => undefined, warn: (m) => console.warn(`[durable] ${m}`), error: (m) => console.error(`[durable] ${m}`) };

let finished = 0;
let onAllDone: (() => void) | undefined;
let target = 0;
function done(): void {
  finished += 1;
  if (finished === target) onAllDone?.();
}

@DurableTask({ name: 'flow-plain', retry: { kind: 'none' } })
class PlainTask {
  async run(_params: unknown, ctx: TaskContext) {
    await ctx.step('s', () => 1);
    done();
  }
}

@DurableTask({ name: 'flow-limited', retry: { kind: 'none' }, concurrency: 1000 })
class LimitedTask {
  async run(_params: unknown, ctx: TaskContext) {
    await ctx.step('s', () => 1);
    done();
  }
}

@DurableTask({ name: 'flow-rated', retry: { kind: 'none' }, rateLimit: { max: 1_000_000, perMs: 1000 } })
class RatedTask {
  async run(_params: unknown, ctx: TaskContext) {
    await ctx.step('s', () => 1);
    done();
  }
}

type Variant = { label: string; task: string; options: (i: number) => SpawnOptions };
const VARIANTS: Variant[] = [
  { label: 'plain (no limit, priority 0)', task: 'flow-plain', options: () => ({}) },
  { label: 'priorities 0..4', task: 'flow-plain', options: (i) => ({ priority: (i * 7) % 5 }) },
  { label: 'limits + priorities (concurrency 1000, 50 keys)', task: 'flow-limited', options: (i) => ({ priority: (i * 7) % 5, concurrencyKey: `k${i % 50}` }) },
  { label: 'rate limit (not binding)', task: 'flow-rated', options: () => ({}) },
];

async function drain(variant: Variant, run: number): Promise<number> {
  const database = `durable_bench_flow_${run + 1}_${VARIANTS.indexOf(variant)}`;
  const { url } = await createDatabase(adminUrl, { name: database, replace: true });
  try {
    const producer = await DurableClient.connect({ databaseUrl: url, logger: quiet });
    try {
      await Promise.all(Array.from({ length: N }, (_, i) => producer.spawn(variant.task, {}, variant.options(i))));
    } finally {
      await producer.close();
    }
    finished = 0;
    target = N;
    const all = new Promise<void>((resolve) => (onAllDone = resolve));
    @Module({
      imports: [DurableModule.forRoot({ databaseUrl: url, worker: { concurrency: 50, pollIntervalMs: 50 } })],
      providers: [PlainTask, LimitedTask, RatedTask],
    })
    class FlowBenchModule {}
    const started = performance.now();
    const app = await NestFactory.createApplicationContext(FlowBenchModule, { logger: ['error', 'warn'] });
    await all;
    const seconds = (performance.now() - started) / 1000;
    await app.close();
    return N / seconds;
  } finally {
    await dropDatabase(adminUrl, database).catch(() => undefined);
  }
}

/** Median time of one claim_tasks call (rolled back each time) in milliseconds. */
async function timeClaim(pool: import('pg').Pool, queue: string, limit: number, samples = 15): Promise<{ ms: number; claimed: number }> {
  const times: number[] = [];
  let claimed = 0;
  const client = await pool.connect();
  try {
    for (let i = 0; i < samples; i++) {
      await client.query('begin');
      const t = performance.now();
      const { rows } = await client.query(`select run_id from durable.claim_tasks(array[$1], 'bench-probe', $2, 60000, false)`, [queue, limit]);
      times.push(performance.now() - t);
      claimed = rows.filter((row) => row.run_id !== null).length;
      await client.query('rollback');
    }
  } finally {
    client.release();
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], claimed };
}

async function claimCosts(): Promise<void> {
  const database = 'durable_bench_flow_claims';
  const { url } = await createDatabase(adminUrl, { name: database, replace: true });
  const producer = await DurableClient.connect({ databaseUrl: url, logger: quiet });
  const pool = sqlPool(url);
  try {
    console.log('\n## The claim with a held backlog (claims of 1 until the runnable task behind H held ones is claimed)\n');
    console.log('| held tasks H | claims until claimed | claim ms (median) | claim ms (max) |');
    console.log('|--:|--:|--:|--:|');
    await pool.query(`insert into durable.flow_limits (queue, name, concurrency, updated_at) values ('held-q', 'held', 1, now())`);
    // The limit's one slot is taken (a run held by a worker that stays alive).
    await producer.spawn('held', {}, { queue: 'held-q' });
    await pool.query(`select * from durable.claim_tasks(array['held-q'], 'holder', 1, 3600000)`);
    let held = 0;
    for (const h of [0, 1000, 10000]) {
      await Promise.all(Array.from({ length: h - held }, () => producer.spawn('held', {}, { queue: 'held-q' })));
      held = h;
      await pool.query(`delete from durable.tasks where queue = 'held-q' and name = 'free'`);
      await pool.query(`delete from durable.flow_hands`);
      const { taskId } = await producer.spawn('free', {}, { queue: 'held-q' });
      await pool.query('analyze durable.runs; analyze durable.tasks');
      // Committed claims (the hand a claim leaves is what the next one goes on from).
      const times: number[] = [];
      for (let claimed = false; !claimed && times.length < 1000;) {
        const t = performance.now();
        const { rows } = await pool.query(`select task_id from durable.claim_tasks(array['held-q'], 'bench-probe', 1, 60000, false)`);
        times.push(performance.now() - t);
        claimed = rows.some((row) => row.task_id === taskId);
      }
      const sorted = [...times].sort((a, b) => a - b);
      console.log(`| ${h} | ${times.length} | ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} | ${sorted.at(-1)!.toFixed(2)} |`);
    }

    console.log('\n## A claim that comes up short (nothing due) with S sleeping runs in the queue\n');
    console.log('| sleeping runs S | claim ms, no limit on the queue | claim ms, a limit on the queue |');
    console.log('|--:|--:|--:|');
    let sleeping = 0;
    for (const s of [0, 20000]) {
      await Promise.all(Array.from({ length: s - sleeping }, (_, i) => producer.spawn('later', {}, { queue: 'sleepy-q', delayMs: 3_600_000, priority: i % 3 })));
      await Promise.all(Array.from({ length: s - sleeping }, () => producer.spawn('later', {}, { queue: 'sleepy-limited-q', delayMs: 3_600_000 })));
      sleeping = s;
      await pool.query(`insert into durable.flow_limits (queue, name, concurrency, updated_at) values ('sleepy-limited-q', 'later', 5, now()) on conflict do nothing`);
      await pool.query('analyze durable.runs; analyze durable.tasks');
      const plain = await timeClaim(pool, 'sleepy-q', 50);
      const limited = await timeClaim(pool, 'sleepy-limited-q', 50);
      console.log(`| ${s} | ${plain.ms.toFixed(2)} | ${limited.ms.toFixed(2)} |`);
    }

    console.log('\n## One claim of up to 200 on each path (5000 pending runs per queue; rolled back)\n');
    console.log('| queue | claim ms (median of 15) | claimed | per run µs |');
    console.log('|---|--:|--:|--:|');
    const limit = (queue: string, columns: string, values: string) =>
      `insert into durable.flow_limits (queue, name, ${columns}, updated_at) values ('${queue}', 'p', ${values}, now())`;
    const paths: [string, string, string | undefined, (i: number) => SpawnOptions][] = [
      ['plain', 'path-plain', undefined, () => ({})],
      ['rate limit 1M/s (not binding)', 'path-rate', limit('path-rate', 'rate_max, rate_per_ms', '1000000, 1000'), () => ({})],
      ['concurrency 100, priorities 0..4', 'path-global', limit('path-global', 'concurrency', '100'), (i) => ({ priority: i % 5 })],
      ['concurrency 2 x 50 keys, priorities 0..4', 'path-keys', limit('path-keys', 'concurrency', '2'), (i) => ({ priority: i % 5, concurrencyKey: `k${i % 50}` })],
    ];
    for (const [label, queue, insertLimit, options] of paths) {
      await Promise.all(Array.from({ length: 5000 }, (_, i) => producer.spawn('p', {}, { queue, ...options(i) })));
      if (insertLimit) await pool.query(insertLimit);
      await pool.query('analyze durable.runs; analyze durable.tasks');
      const { ms, claimed } = await timeClaim(pool, queue, 200);
      console.log(`| ${label} | ${ms.toFixed(2)} | ${claimed} | ${((ms * 1000) / Math.max(claimed, 1)).toFixed(0)} |`);
    }

    console.log('\n## EXPLAIN of the ordinary claim\'s candidate scan (20000 due runs, priority 0)\n');
    await Promise.all(Array.from({ length: 20000 }, () => producer.spawn('due', {}, { queue: 'due-q' })));
    await pool.query('analyze durable.runs; analyze durable.tasks');
    const { rows } = await pool.query(`explain (analyze, costs off, timing off, summary off)
      select r.id from durable.runs r join durable.tasks t on t.id = r.task_id
      where r.queue = 'due-q' and r.priority = 0 and r.state in ('pending', 'sleeping') and r.available_at <= now()
        and t.state in ('pending', 'sleeping')
      order by r.available_at, r.id limit 50 for update of r, t skip locked`);
    console.log('```');
    for (const row of rows) console.log(row['QUERY PLAN']);
    console.log('```');
  } finally {
    await producer.close();
    await pool.end();
    await dropDatabase(adminUrl, database).catch(() => undefined);
  }
}

async function main(): Promise<void> {
  console.log(`# Flow control bench: N = ${N} one-step tasks per drain, ${RUNS} interleaved runs, worker concurrency 50\n`);
  if (process.env.BENCH_FLOW_ONLY === 'claims') return claimCosts();
  const results = new Map<Variant, number[]>(VARIANTS.map((variant) => [variant, []]));
  await drain(VARIANTS[0], -1); // warm-up (JIT, caches), not counted
  for (let run = 0; run < RUNS; run++) {
    // Each run starts with another variant, so that no variant always runs first.
    for (let k = 0; k < VARIANTS.length; k++) {
      const variant = VARIANTS[(run + k) % VARIANTS.length];
      results.get(variant)!.push(await drain(variant, run));
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const plain = median(results.get(VARIANTS[0])!);
  console.log('| drain | tasks/s (median) | runs | ratio to plain |');
  console.log('|---|--:|---|--:|');
  for (const variant of VARIANTS) {
    const values = results.get(variant)!;
    console.log(`| ${variant.label} | ${median(values).toFixed(0)} | ${values.map((v) => v.toFixed(0)).join(' / ')} | ${(median(values) / plain).toFixed(2)} |`);
  }
  await claimCosts();
}

await main();
process.exit(0);
