/**
 * Part 6, poison among thousands (issue 13, item 4): thousands of healthy `storm` tasks and a few
 * poison rows on the same queue, inserted with SQL as a buggy older version or a hand edit would
 * leave them, before the workers start and again mid-run:
 * - factor 0: a run whose worker died (lease expired) with a stored exponential retry of factor 0
 *   (once `cannot take logarithm of zero` in every claim of every worker);
 * - corrupt: the same, but a run of the next attempt exists already, so failing the expired run
 *   cannot create it (a duplicate key in the claim's sweep).
 *
 * What is proven:
 * - every healthy task completes once with its result, each step run once (nothing re-runs: no
 *   process dies), at the throughput of a clean run;
 * - the poison is isolated: a factor-0 task is retried (factor taken as 1) and completes on its
 *   second attempt, a corrupt one fails alone with SweepFailed and a message that says why;
 * - no worker logs a claim error (`claiming failed`), none logs anything else, nothing escapes.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { DurableClient } from '../lib/index.js';
import { killAllWorkers, type WorkerProcess } from '../devkit/processes.js';
import { auditStorm, waitForTerminal, type StormReport } from './crash-storm.js';
import { chaosPool, count, installChaosTables } from './database.js';
import { startChaosWorker } from './workers.js';

export interface PoisonOptions {
  /** A fresh database. */
  databaseUrl: string;
  /** Healthy tasks (1-3 steps each). */
  healthy: number;
  /** Poison rows of each kind, half before the workers start, half mid-run. */
  poisonEach: number;
  workers: number;
  concurrency: number;
  leaseMs: number;
  log?: (line: string) => void;
}

export interface PoisonReport extends Pick<StormReport, 'reExecutedSteps' | 'unexplained' | 'lostTasks' | 'doubleCompletions' | 'wrongResults' | 'badCheckpoints'> {
  healthy: number;
  poisonEach: number;
  durationMs: number;
  tasksPerSecond: number;
  /** Factor-0 tasks that completed on attempt 2 (all of them, if right). */
  zeroFactorRetried: number;
  /** Corrupt tasks failed alone with SweepFailed and a clear message (all of them, if right). */
  corruptFailed: number;
  /** Lines the workers logged: claim errors, and any other warning or error. */
  claimErrors: number;
  otherLogLines: number;
  logSample: string[];
  escaped: number;
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * A task whose worker died: attempt 1 running, its lease expired a minute ago (as poison.spec.ts
 * builds them). In one transaction: the workers running beside a mid-run insert must not sweep
 * the task before its corrupt run is in.
 */
async function insertPoison(pool: pg.Pool, kind: 'zero-factor' | 'corrupt'): Promise<string> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const task = await insertPoisonRows(client, kind);
    await client.query('commit');
    return task;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

async function insertPoisonRows(pool: pg.ClientBase, kind: 'zero-factor' | 'corrupt'): Promise<string> {
  const [task, run] = [randomUUID(), randomUUID()];
  const retry = kind === 'zero-factor' ? { kind: 'exponential', baseDelayMs: 200, factor: 0 } : { kind: 'fixed', delayMs: 10 };
  await pool.query(`insert into durable.queues (name, created_at) values ('default', now()) on conflict do nothing`);
  await pool.query(
    `insert into durable.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry, run_id, created_at, updated_at, first_started_at)
     values ($1, 'default', 'attempt', $2, '{}', 'running', 1, 3, $3::jsonb, $4, now(), now(), now())`,
    [task, JSON.stringify({ poison: kind }), JSON.stringify(retry), run],
  );
  await pool.query(
    `insert into durable.runs (id, task_id, queue, attempt, state, available_at, worker_id, lease_expires_at, created_at, started_at)
     values ($1, $2, 'default', 1, 'running', now(), 'dead-worker', durable.now() - interval '1 minute', now(), now())`,
    [run, task],
  );
  if (kind === 'corrupt') {
    await pool.query(
      `insert into durable.runs (id, task_id, queue, attempt, state, available_at, created_at) values ($1, $2, 'default', 2, 'failed', now(), now())`,
      [randomUUID(), task],
    );
  }
  return task;
}

export async function runPoison(options: PoisonOptions): Promise<PoisonReport> {
  const log = options.log ?? (() => undefined);
  const violations: string[] = [];
  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 4 }); // applies the migrations
  const pool = chaosPool(options.databaseUrl);
  const lines: string[] = [];
  let claimErrors = 0;
  const onLine = (line: string) => {
    if (/claiming failed/.test(line)) claimErrors += 1;
    else if (line.trim() && !/^ready \d+$/.test(line)) lines.push(line);
  };
  try {
    await installChaosTables(pool);
    const poison: Record<'zero-factor' | 'corrupt', string[]> = { 'zero-factor': [], corrupt: [] };
    const insertHalf = async (n: number) => {
      for (let i = 0; i < n; i++) for (const kind of ['zero-factor', 'corrupt'] as const) poison[kind].push(await insertPoison(pool, kind));
    };
    await insertHalf(Math.ceil(options.poisonEach / 2));
    const workers: WorkerProcess[] = await Promise.all(Array.from({ length: options.workers }, () =>
      startChaosWorker({ databaseUrl: options.databaseUrl, concurrency: options.concurrency, leaseMs: options.leaseMs, pollIntervalMs: 100, onLine })));

    const started = Date.now();
    await Promise.all(Array.from({ length: options.healthy }, (_, i) => client.spawn('storm', { steps: 1 + (i % 3), seed: i })));
    log(`poison: ${options.healthy} healthy tasks spawned, ${Math.ceil(options.poisonEach / 2)} poison row(s) of each kind waiting`);
    // Stuck claims leave tasks unfinished: no progress for stallMs ends the wait (they count as lost).
    const stallMs = 10_000 + options.leaseMs;
    await waitForTerminal(pool, Math.ceil(options.healthy / 3), stallMs).catch((error: Error) => log(`poison: ${error.message}`));
    await insertHalf(Math.floor(options.poisonEach / 2));
    log('poison: the other half of the poison rows inserted mid-run');
    await waitForTerminal(pool, options.healthy + 2 * options.poisonEach, stallMs).catch((error: Error) => log(`poison: ${error.message}`));
    const durationMs = Date.now() - started;

    // The poison: isolated.
    const { rows } = await pool.query<{ id: string; state: string; result: unknown; error: { name?: string; message?: string } | null; runs: string }>(
      `select t.id, t.state, t.result, t.error,
         (select string_agg(r.attempt || ':' || r.state || coalesce(':' || (r.error->>'name'), ''), ',' order by r.attempt) from durable.runs r where r.task_id = t.id) as runs
       from durable.tasks t where t.id = any($1::uuid[])`,
      [[...poison['zero-factor'], ...poison.corrupt]],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    const retried = poison['zero-factor'].filter((id) => byId.get(id)?.state === 'completed' && byId.get(id)?.result === 2
      && byId.get(id)?.runs === '1:failed:LeaseExpired,2:completed');
    const failed = poison.corrupt.filter((id) => byId.get(id)?.state === 'failed' && byId.get(id)?.error?.name === 'SweepFailed'
      && /could not fail the expired run .*duplicate key/.test(byId.get(id)?.error?.message ?? ''));
    if (retried.length !== poison['zero-factor'].length) {
      violations.push(`factor-0 tasks not retried to completion: ${JSON.stringify(poison['zero-factor'].filter((id) => !retried.includes(id)).map((id) => byId.get(id)).slice(0, 3))}`);
    }
    if (failed.length !== poison.corrupt.length) {
      violations.push(`corrupt tasks not failed alone with a clear SweepFailed: ${JSON.stringify(poison.corrupt.filter((id) => !failed.includes(id)).map((id) => byId.get(id)).slice(0, 3))}`);
    }

    // The healthy tasks: each completed once, each step run once.
    const audit = await auditStorm(pool, { explains: () => false, perProcess: 0, bound: 0, boundText: 'no process killed' });
    violations.push(...audit.violations);
    const healthyDone = await count(pool, `select count(*) as n from durable.tasks where name = 'storm' and state = 'completed' and attempts = 1`);
    if (healthyDone !== options.healthy) violations.push(`${options.healthy - healthyDone} healthy task(s) not completed on their first attempt`);

    if (claimErrors > 0) violations.push(`the workers logged ${claimErrors} claim error(s)`);
    if (lines.length > 0) violations.push(`the workers logged ${lines.length} other line(s), e.g. ${JSON.stringify(lines.slice(0, 3))}`);
    const escaped = workers.reduce((sum, worker) => sum + worker.escaped, 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);
    const exits = await Promise.all(workers.map((worker) => worker.terminate()));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) violations.push(`worker ${workers[i].pid} did not shut down cleanly on SIGTERM (${exit.signal ?? exit.code})`);
    });
    return {
      healthy: options.healthy, poisonEach: options.poisonEach, durationMs, tasksPerSecond: Math.round(options.healthy / (durationMs / 1000)),
      zeroFactorRetried: retried.length, corruptFailed: failed.length, claimErrors, otherLogLines: lines.length, logSample: lines.slice(0, 5), escaped,
      ...audit.figures, violations,
    };
  } finally {
    await killAllWorkers();
    await client.close();
    await pool.end();
  }
}
