/**
 * One worker process of the chaos suite: a Nest application context with `DurableModule.forRoot`
 * and the chaos tasks, as an app built on the package runs them. Started by chaos/workers.ts
 * (compiled by chaos/compile.ts, run by plain `node` with an IPC channel); prints `ready <pid>`
 * once the application has bootstrapped (its worker is then claiming).
 *
 * Tasks:
 * - `storm` { steps, seed, pauseMs?, record? }: steps `s1`..`sN`; step i inserts its effect into
 *   the test's table `chaos_effects(task_id, step, attempt, pid)` (unless record is false), waits
 *   pauseMs, and returns seed * 10 + i. The task returns { sum, steps }.
 * - `nap` { ms }: sleeps (ctx.sleepFor), then returns 'rested'.
 * - `wait` { event }: returns the payload of that event (ctx.awaitEvent, no timeout).
 * - `ledger` { seed, rounds, pauseMs?, sleepMs? }: steps `s1`..`sN` that return { v: seed * 100 + i,
 *   by: <this execution's id> }, with sleeps (`z<i>`, sleepMs) before, after or beside them
 *   (`Promise.all([step, sleep])`), so that executions suspend with a step in flight. Each
 *   execution records itself in `chaos_executions` (start; end: how it ended, the step values
 *   the library resolved to it, the steps it failed and why, the steps still in flight; what
 *   those got later) and each run of a step function in `chaos_step_runs` (chaos/ledger.ts).
 * - `attempt`: returns ctx.attempt (poison rows inserted by SQL run it).
 * - `fanout` { children, seed, pauseMs?, batch? }: spawns `children` child `storm` tasks of one
 *   step (`c<i>`, seed seed * 100000 + i), `batch` spawns at once (default 20), joins them all
 *   (ctx.joinAll), and returns { children, sum } over their results.
 * - `limited` { pauseMs }: concurrency-limited (LIMITED_CONCURRENCY across all processes); records
 *   each execution's start and end in `chaos_limited` (chaos/limit-storm.ts).
 * - `tick`: declared with an every-second schedule (`* * * * * *`, chaos/schedule-ticks.ts);
 *   returns its `durable.scheduledFor` header. Registered only when CHAOS_TICKS=1, so that the
 *   other parts' workers fire no schedule.
 *
 * Environment: CHAOS_DATABASE_URL (required), CHAOS_DURABLE_URL (durable's own connection, e.g.
 * through a TCP proxy; default CHAOS_DATABASE_URL; the test's tables are always written
 * directly), CHAOS_WORKER_ID (default `chaos-<pid>`), CHAOS_CONCURRENCY (10; the pool gets 2
 * more), CHAOS_LEASE_MS (5000), CHAOS_POLL_MS (200), CHAOS_QUERY_TIMEOUT_MS (5000), CHAOS_TICKS ('1': register `tick` and its schedule), CHAOS_LOGS
 * ('all' | 'errors' | 'none'; default 'errors': warnings and errors).
 *
 * IPC requests (`{ id, type, ... }`, answered with `{ id, ... }`):
 * - `spawn` { tasks: [{ name, params }] }: spawns each through the injected DurableClient, one
 *   after another when `sequential`, else all at once; answers each outcome with its duration.
 * - `emit` { names: string[] }: emits each event (payload { event: name }).
 * - `memory`: runs a full GC (the process runs with --expose-gc) and answers process memory.
 * - `stats`: handlers executing now (counted by the handlers themselves), the runs the `ledger`
 *   handlers are executing, and the worker's own in-flight count.
 * SIGTERM closes the application (the worker drains) and exits 0. Anything that escapes to the
 * process (unhandledRejection, uncaughtException) is printed as an `ESCAPED` line: the parent
 * counts those as failures.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { Inject, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pg from 'pg';
import {
  DurableClient, DurableModule, DurableTask, DurableWorkerMonitor, type DurableTaskHandler, type TaskContext, type TaskHandle,
} from '../lib/index.js';
import { readyUntilSigterm } from '../devkit/child.js';
import { numberFromEnv } from '../devkit/env.js';
import { sleep } from '../devkit/wait.js';

process.on('unhandledRejection', (reason) => {
  process.stdout.write(`ESCAPED unhandledRejection ${oneLine(reason)}\n`);
});
process.on('uncaughtException', (error) => {
  process.stdout.write(`ESCAPED uncaughtException ${oneLine(error)}\n`);
});

const databaseUrl = process.env.CHAOS_DATABASE_URL;
if (!databaseUrl) throw new Error('CHAOS_DATABASE_URL is not set');
const concurrency = numberFromEnv('CHAOS_CONCURRENCY', 10);
const workerId = process.env.CHAOS_WORKER_ID || `chaos-${process.pid}`;

const EFFECTS = Symbol('chaos effects pool');
const effects = new pg.Pool({ connectionString: databaseUrl, max: concurrency + 1, application_name: 'chaos-effects' });
// A pooled connection that dies while idle (the server stopped) must not crash the process.
effects.on('error', () => undefined);

/** Handlers executing now in this process; a suspended or finished execution is not counted. */
let executing = 0;
/** Runs that `ledger` handlers of this process are executing now (by run id, executions at once). */
const executingRuns = new Map<string, number>();

export interface StormParams {
  steps: number;
  seed: number;
  pauseMs?: number;
  record?: boolean;
}

@DurableTask({ name: 'storm', maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 100 } })
class StormTask implements DurableTaskHandler<StormParams, { sum: number; steps: number }> {
  constructor(@Inject(EFFECTS) private readonly pool: pg.Pool) {}

  async run(params: StormParams, ctx: TaskContext) {
    executing += 1;
    try {
      let sum = 0;
      for (let step = 1; step <= params.steps; step++) {
        sum += await ctx.step(`s${step}`, async () => {
          if (params.record !== false) {
            await this.pool.query('insert into chaos_effects (task_id, step, attempt, pid) values ($1, $2, $3, $4)', [
              ctx.taskId, step, ctx.attempt, process.pid,
            ]);
          }
          // After the effect and before the checkpoint: the window in which a kill re-runs the step.
          if (params.pauseMs) await sleep(params.pauseMs);
          return params.seed * 10 + step;
        });
      }
      return { sum, steps: params.steps };
    } finally {
      executing -= 1;
    }
  }
}

@DurableTask({ name: 'nap', maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 100 } })
class NapTask implements DurableTaskHandler<{ ms: number }, string> {
  async run(params: { ms: number }, ctx: TaskContext) {
    executing += 1;
    try {
      await ctx.sleepFor('nap', params.ms);
      return 'rested';
    } finally {
      executing -= 1;
    }
  }
}

@DurableTask({ name: 'wait', maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 100 } })
class WaitTask implements DurableTaskHandler<{ event: string }, unknown> {
  async run(params: { event: string }, ctx: TaskContext) {
    executing += 1;
    try {
      return await ctx.awaitEvent(params.event);
    } finally {
      executing -= 1;
    }
  }
}

export interface LedgerParams {
  seed: number;
  /** Steps `s1`..`sN`, one per round. */
  rounds: number;
  /** Time each step function spends after recording its run, before its checkpoint. */
  pauseMs?: number;
  /** The sleeps' length; 0 or unset: no sleeps. */
  sleepMs?: number;
}

/** A `ledger` step's value: what it computes, and the execution that computed it. */
export interface LedgerValue {
  v: number;
  by: string;
}

@DurableTask({ name: 'ledger', maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 50 } })
class LedgerTask implements DurableTaskHandler<LedgerParams, { seed: number; values: LedgerValue[] }> {
  constructor(@Inject(EFFECTS) private readonly pool: pg.Pool) {}

  async run(params: LedgerParams, ctx: TaskContext) {
    const exec = randomUUID();
    executing += 1;
    executingRuns.set(ctx.runId, (executingRuns.get(ctx.runId) ?? 0) + 1);
    /** [step, by] of every value the library resolved to this execution, [step, error] of every step it failed; steps still pending. */
    const seen: [number, string][] = [];
    const refused: [number, string][] = [];
    const inFlight = new Set<number>();
    let ended = false;
    // A step still in flight when the execution ended: its outcome, once known.
    const late = (entry: Record<string, unknown>) => {
      this.pool.query(`update chaos_executions set late = late || $2::jsonb where exec = $1`, [exec, JSON.stringify([entry])]).catch(() => undefined);
    };
    const step = (r: number): Promise<LedgerValue> => {
      inFlight.add(r);
      const value = ctx.step(`s${r}`, async () => {
        await this.pool.query('insert into chaos_step_runs (task_id, step, exec, pid) values ($1, $2, $3, $4)', [ctx.taskId, r, exec, process.pid]);
        if (params.pauseMs) await sleep(params.pauseMs);
        return { v: params.seed * 100 + r, by: exec };
      });
      // Registered first: runs before the handler's own continuation.
      value.then(
        (got) => {
          inFlight.delete(r);
          if (ended) late({ step: r, by: got.by });
          else seen.push([r, got.by]);
        },
        (error: unknown) => {
          inFlight.delete(r);
          if (ended) late({ step: r, error: oneLine(error) });
          else refused.push([r, oneLine(error)]);
        },
      );
      return value;
    };
    let ending = 'returned';
    try {
      await this.pool.query('insert into chaos_executions (exec, task_id, run_id, attempt, pid, worker_id) values ($1, $2, $3, $4, $5, $6)', [
        exec, ctx.taskId, ctx.runId, ctx.attempt, process.pid, workerId,
      ]);
      const values: LedgerValue[] = [];
      const nap = (r: number) => ctx.sleepFor(`z${r}`, params.sleepMs!);
      for (let r = 1; r <= params.rounds; r++) {
        const pattern = params.sleepMs ? (params.seed + r) % 4 : 3;
        if (pattern === 0) {
          values.push(await step(r));
          await nap(r);
        } else if (pattern === 1) {
          values.push((await Promise.all([step(r), nap(r)]))[0]);
        } else if (pattern === 2) {
          await nap(r);
          values.push(await step(r));
        } else {
          values.push(await step(r));
        }
      }
      return { seed: params.seed, values };
    } catch (error) {
      ending = oneLine(error);
      throw error;
    } finally {
      ended = true;
      await this.pool.query(
        `update chaos_executions set ended_at = clock_timestamp(), ending = $2, seen = $3, refused = $4, in_flight = $5 where exec = $1`,
        [exec, ending, JSON.stringify(seen), JSON.stringify(refused), JSON.stringify([...inFlight])],
      ).catch(() => undefined);
      executing -= 1;
      const left = (executingRuns.get(ctx.runId) ?? 1) - 1;
      if (left > 0) executingRuns.set(ctx.runId, left);
      else executingRuns.delete(ctx.runId);
    }
  }
}

export interface FanOutParams {
  children: number;
  seed: number;
  pauseMs?: number;
  batch?: number;
}

@DurableTask({ name: 'fanout', maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 100 } })
class FanOutTask implements DurableTaskHandler<FanOutParams, { children: number; sum: number }> {
  async run(params: FanOutParams, ctx: TaskContext) {
    executing += 1;
    try {
      const handles: TaskHandle<{ sum: number; steps: number }>[] = [];
      const batch = params.batch ?? 20;
      for (let from = 0; from < params.children; from += batch) {
        const line = Array.from({ length: Math.min(batch, params.children - from) }, (_, k) => from + k);
        handles.push(...(await Promise.all(line.map((i) => ctx.spawn<{ sum: number; steps: number }>(`c${i}`, 'storm', {
          steps: 1, seed: params.seed * 100_000 + i, ...(params.pauseMs ? { pauseMs: params.pauseMs } : {}),
        })))));
      }
      const results = await ctx.joinAll(handles);
      return { children: results.length, sum: results.reduce((sum, result) => sum + result.sum, 0) };
    } finally {
      executing -= 1;
    }
  }
}

/** The concurrency limit of `limited` tasks (chaos part 9; chaos/limit-storm.ts audits against the same number). */
const LIMITED_CONCURRENCY = 3;

/**
 * `limited` { pauseMs }: at most LIMITED_CONCURRENCY at once across every worker process. The
 * handler records its own start and end in `chaos_limited` (database clock), around a step.
 */
@DurableTask({ name: 'limited', concurrency: LIMITED_CONCURRENCY, maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 50 } })
class LimitedTask implements DurableTaskHandler<{ pauseMs: number }, string> {
  constructor(@Inject(EFFECTS) private readonly pool: pg.Pool) {}

  async run(params: { pauseMs: number }, ctx: TaskContext) {
    executing += 1;
    try {
      const { rows } = await this.pool.query(
        'insert into chaos_limited (task_id, attempt, pid) values ($1, $2, $3) returning id', [ctx.taskId, ctx.attempt, process.pid],
      );
      await ctx.step('work', () => sleep(params.pauseMs).then(() => 'done'));
      await this.pool.query('update chaos_limited set ended_at = clock_timestamp() where id = $1', [rows[0].id]);
      return 'done';
    } finally {
      executing -= 1;
    }
  }
}

@DurableTask({ name: 'attempt', maxAttempts: 3, retry: { kind: 'fixed', delayMs: 100 } })
class AttemptTask implements DurableTaskHandler<unknown, number> {
  async run(_params: unknown, ctx: TaskContext) {
    return ctx.attempt;
  }
}

/** `tick`: fired by the schedule its decorator declares (each process declares it at startup); returns its tick. */
@DurableTask({ name: 'tick', schedule: { cron: '* * * * * *' }, maxAttempts: 10, retry: { kind: 'fixed', delayMs: 100 } })
class TickTask implements DurableTaskHandler<unknown, unknown> {
  async run(_params: unknown, ctx: TaskContext) {
    return ctx.headers['durable.scheduledFor'] ?? null;
  }
}

const logs = process.env.CHAOS_LOGS ?? 'errors';

@Module({
  imports: [
    DurableModule.forRoot({
      databaseUrl: process.env.CHAOS_DURABLE_URL || databaseUrl,
      queryTimeoutMs: numberFromEnv('CHAOS_QUERY_TIMEOUT_MS', 5000),
      // Enough for the claim loop, the batched writes and one call per handler; several worker
      // processes share a server whose max_connections may be 100.
      poolSize: Math.min(10, concurrency + 2),
      worker: {
        workerId,
        concurrency,
        leaseMs: numberFromEnv('CHAOS_LEASE_MS', 5000),
        pollIntervalMs: numberFromEnv('CHAOS_POLL_MS', 200),
        shutdownTimeoutMs: 5000,
      },
    }),
  ],
  providers: [
    { provide: EFFECTS, useValue: effects }, StormTask, NapTask, WaitTask, LedgerTask, AttemptTask, FanOutTask, LimitedTask,
    ...(process.env.CHAOS_TICKS === '1' ? [TickTask] : []),
  ],
})
class ChaosWorkerModule {}

const app = await NestFactory.createApplicationContext(ChaosWorkerModule, {
  logger: logs === 'all' ? ['log', 'warn', 'error'] : logs === 'none' ? false : ['warn', 'error'],
});
const client = app.get(DurableClient);
const monitor = app.get(DurableWorkerMonitor);

type Request =
  | { id: number; type: 'spawn'; tasks: { name: string; params: unknown }[]; sequential?: boolean }
  | { id: number; type: 'emit'; names: string[] }
  | { id: number; type: 'memory' }
  | { id: number; type: 'stats' };

export type SpawnOutcome =
  | { ok: true; taskId: string; ms: number }
  | { ok: false; errorName: string; message: string; ms: number };

async function spawnOne(name: string, params: unknown): Promise<SpawnOutcome> {
  const started = Date.now();
  try {
    const { taskId } = await client.spawn(name, params);
    return { ok: true, taskId, ms: Date.now() - started };
  } catch (error) {
    const { name: errorName = 'Error', message = String(error) } = (error ?? {}) as Error;
    return { ok: false, errorName, message, ms: Date.now() - started };
  }
}

async function answer(request: Request): Promise<Record<string, unknown>> {
  switch (request.type) {
    case 'spawn': {
      if (!request.sequential) return { outcomes: await Promise.all(request.tasks.map((task) => spawnOne(task.name, task.params))) };
      const outcomes: SpawnOutcome[] = [];
      for (const task of request.tasks) outcomes.push(await spawnOne(task.name, task.params));
      return { outcomes };
    }
    case 'emit':
      for (const name of request.names) await client.emitEvent(name, { event: name });
      return { emitted: request.names.length };
    case 'memory': {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      const memory = process.memoryUsage();
      return { gc: gc !== undefined, rss: memory.rss, heapUsed: memory.heapUsed, external: memory.external, arrayBuffers: memory.arrayBuffers };
    }
    case 'stats':
      return { executing, runs: [...executingRuns.keys()], workerInFlight: monitor.status().inFlight };
  }
}

process.on('message', (request: Request) => {
  answer(request).then(
    (body) => process.send?.({ id: request.id, ...body }),
    (error: unknown) => process.send?.({ id: request.id, error: oneLine(error) }),
  );
});

readyUntilSigterm(async () => {
  await app.close();
  await effects.end();
});

function oneLine(value: unknown): string {
  const text = value instanceof Error ? `${value.name}: ${value.message}` : String(value);
  return text.replace(/\s+/g, ' ');
}
