/**
 * Part 9, the crash storm under a concurrency limit: worker processes with more free slots
 * between them than the limit run `limited` tasks (chaos/worker.ts: `concurrency: 3` across all
 * processes) while a killer SIGKILLs a random worker every few hundred milliseconds and starts a
 * replacement. Then, from the test's own records (each execution's start and end, written by the
 * handler in `chaos_limited` on the database clock), the audit replays every interval and checks
 * that no instant saw more than the limit in flight, counting a killed execution as in flight
 * until its run's lease expired (the moment the claim gives its slot to another task: a dead
 * worker's slot is freed by lease expiry, never leaked). Every task must complete.
 */
import { DurableClient } from '../lib/index.js';
import { killAllWorkers, type WorkerProcess } from '../devkit/processes.js';
import { eventually, sleep } from '../devkit/wait.js';
import { chaosPool, count } from './database.js';
import { startChaosWorker } from './workers.js';

/** The `limited` task's `concurrency` in chaos/worker.ts. */
export const LIMIT = 3;

export interface LimitStormOptions {
  databaseUrl: string;
  tasks: number;
  workers: number;
  /** Handlers at once per worker process (workers x concurrency should exceed LIMIT). */
  concurrency: number;
  kills: number;
  killIntervalMs: number;
  leaseMs: number;
  /** Each task's step lasts this long. */
  pauseMs: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface LimitStormReport {
  tasks: number;
  completed: number;
  kills: number;
  workersStarted: number;
  /** The most executions in flight at one instant (killed ones until their lease expired). */
  maxInFlight: number;
  limit: number;
  /** Executions without a recorded end whose run did not end by lease expiry. */
  unexplainedOpen: number;
  /** Runs that ended by lease expiry (each one a killed execution's slot given back). */
  leaseExpiries: number;
  durationMs: number;
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

export async function runLimitStorm(options: LimitStormOptions): Promise<LimitStormReport> {
  const log = options.log ?? (() => undefined);
  let state = options.seed ?? Date.now() % 1_000_000;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const settings = { databaseUrl: options.databaseUrl, concurrency: options.concurrency, leaseMs: options.leaseMs, pollIntervalMs: 100 };
  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 4 });
  const pool = chaosPool(options.databaseUrl);
  const all: WorkerProcess[] = [];
  let kills = 0;
  const violations: string[] = [];
  try {
    await pool.query(`create table if not exists public.chaos_limited (
      id bigserial primary key, task_id uuid not null, attempt integer not null, pid integer not null,
      started_at timestamptz not null default clock_timestamp(), ended_at timestamptz)`);
    const startWorker = async () => {
      const worker = await startChaosWorker(settings);
      all.push(worker);
      return worker;
    };
    await Promise.all(Array.from({ length: options.workers }, startWorker));
    const started = Date.now();
    await Promise.all(Array.from({ length: options.tasks }, () => client.spawn('limited', { pauseMs: options.pauseMs })));
    await eventually(async () => (await count(pool, `select count(*) as n from public.chaos_limited`)) > 0, 60_000, 'the first start', 50);
    const replacements: Promise<unknown>[] = [];
    for (let k = 0; k < options.kills; k++) {
      await sleep(options.killIntervalMs);
      // A worker that has been up a while (claiming), not a replacement still connecting.
      const victim = await eventually(() => {
        const alive = all.filter((worker) => worker.isAlive && worker.uptimeMs >= options.killIntervalMs);
        return alive.length === 0 ? undefined : alive[Math.floor(random() * alive.length)];
      }, 60_000, 'a worker that is up', 50);
      await victim.kill();
      kills += 1;
      replacements.push(startWorker());
    }
    await Promise.all(replacements);
    log(`limit storm: ${kills} kills done`);
    await eventually(async () => (await count(pool, `select count(*) as n from durable.tasks where state in ('pending', 'running', 'sleeping')`)) === 0,
      60_000 + options.leaseMs * 4, 'every task to finish', 100).catch((error: Error) => violations.push(error.message));
    const durationMs = Date.now() - started;
    await Promise.all(all.filter((worker) => worker.isAlive).map((worker) => worker.terminate()));
    const escaped = all.reduce((sum, worker) => sum + worker.escaped, 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);

    const audit = await auditLimit(pool);
    const completed = await count(pool, `select count(*) as n from durable.tasks where state = 'completed'`);
    if (completed !== options.tasks) violations.push(`${options.tasks - completed} task(s) did not complete`);
    if (audit.maxInFlight > LIMIT) violations.push(`${audit.maxInFlight} executions in flight at once, over the limit of ${LIMIT}`);
    if (audit.unexplainedOpen > 0) violations.push(`${audit.unexplainedOpen} execution(s) never ended yet their run did not expire`);
    return {
      tasks: options.tasks, completed, kills, workersStarted: all.length, limit: LIMIT, durationMs, violations, ...audit,
    };
  } finally {
    await killAllWorkers();
    await client.close();
    await pool.end();
  }
}

/**
 * Replays the recorded executions: each from its recorded start to its recorded end, or, for an
 * execution whose process died, to its run's lease expiry.
 */
export async function auditLimit(pool: import('pg').Pool): Promise<Pick<LimitStormReport, 'maxInFlight' | 'unexplainedOpen' | 'leaseExpiries'>> {
  const { rows: [figures] } = await pool.query(`
    with executions as (
      select l.started_at,
        coalesce(l.ended_at, case when r.error->>'name' = 'LeaseExpired' then (r.error->>'leaseExpiredAt')::timestamptz end) as ended_at
      from public.chaos_limited l
      join durable.runs r on r.task_id = l.task_id and r.attempt = l.attempt
    ), edges as (
      select started_at as at, 1 as d from executions
      union all select ended_at, -1 from executions where ended_at is not null
    )
    select
      (select coalesce(max(n), 0) from (select sum(d) over (order by at, d rows unbounded preceding) as n from edges) x)::int as max_in_flight,
      (select count(*) from executions where ended_at is null)::int as unexplained_open,
      (select count(*) from durable.runs where error->>'name' = 'LeaseExpired')::int as lease_expiries`);
  return { maxInFlight: figures.max_in_flight, unexplainedOpen: figures.unexplained_open, leaseExpiries: figures.lease_expiries };
}
