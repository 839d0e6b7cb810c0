/**
 * Part 3, load and memory, with two worker processes.
 *
 * Burst: N `storm` tasks spawned at once; every one must complete with its result, and each
 * worker's memory must stay bounded: its resident set (VmRSS from /proc, sampled every 200 ms)
 * peaks no higher in the second half of the tasks than in the first (within 1.25x + 20 MB), and
 * its live heap after a full GC does not grow between a quarter of the way and the end.
 *
 * Suspended: S tasks sleeping (an hour) or waiting for events, all at once. They hold no worker
 * slot (no handler executing, the worker's in-flight count is 0, no run `running`; quick tasks,
 * as many as all slots together, complete meanwhile) and no memory per task in the worker
 * (live heap and RSS before and after, within a fixed margin). Then the events are emitted and
 * the database clock moves past the sleeps, and every one of them completes.
 */
import { DurableClient } from '../lib/index.js';
import { killAllWorkers, type WorkerProcess } from '../devkit/processes.js';
import { advanceTestClock } from '../devkit/test-clock.js';
import { eventually, sleep } from '../devkit/wait.js';
import { chaosPool, count, EXPECTED_STORM_RESULT_SQL } from './database.js';
import { startChaosWorker } from './workers.js';

export interface LoadOptions {
  /** A fresh database with the test clock enabled (devkit's createDatabase with testClock). */
  databaseUrl: string;
  /** Tasks of the burst. */
  tasks: number;
  /** Tasks asleep or waiting at once. */
  suspended: number;
  /** Handlers at once per worker (2 workers). */
  concurrency: number;
  leaseMs?: number;
  sampleMs?: number;
  log?: (line: string) => void;
}

export interface Memory {
  rss: number;
  heapUsed: number;
}

export interface BurstWorkerFigures {
  pid: number;
  processed: number;
  peakRssFirstHalf: number;
  peakRssSecondHalf: number;
  peakRss: number;
  /** Live heap after a full GC at a quarter of the burst, and at the end. */
  heapAtQuarter: number;
  heapAtEnd: number;
}

export interface SuspendedWorkerFigures {
  pid: number;
  suspendedHere: number;
  before: Memory;
  after: Memory;
  executing: number;
  workerInFlight: number | null;
}

export interface LoadReport {
  burst: {
    tasks: number;
    completed: number;
    wrongResults: number;
    durationMs: number;
    tasksPerSecond: number;
    samples: number;
    workers: BurstWorkerFigures[];
  };
  suspended: {
    tasks: number;
    sleeping: number;
    timeToSuspendMs: number;
    runningRuns: number;
    quickTasks: number;
    quickTasksMs: number;
    /** Live heap and RSS added per suspended task (all workers together). */
    heapBytesPerTask: number;
    rssBytesPerTask: number;
    resumedMs: number;
    completed: number;
    workers: SuspendedWorkerFigures[];
  };
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
const MB = 1024 * 1024;
/** Allowed growth of the live heap over the burst, and per phase of suspended tasks. */
const HEAP_MARGIN = 8 * MB;
const RSS_MARGIN = 32 * MB;

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const log = options.log ?? (() => undefined);
  const violations: string[] = [];
  const sampleMs = options.sampleMs ?? 200;
  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 4 }); // migrations
  const pool = chaosPool(options.databaseUrl);
  let sampler: NodeJS.Timeout | undefined;
  try {
    const workers = await Promise.all([0, 1].map(() =>
      startChaosWorker({ databaseUrl: options.databaseUrl, concurrency: options.concurrency, leaseMs: options.leaseMs ?? 30_000 }),
    ));
    const memory = (worker: WorkerProcess) => worker.request<Memory & { gc: boolean }>({ type: 'memory' });

    // ---- Burst
    const n = options.tasks;
    let completed = 0;
    const samples: { completed: number; rss: (number | undefined)[] }[] = [];
    sampler = setInterval(() => samples.push({ completed, rss: workers.map((worker) => worker.rssBytes()) }), sampleMs);
    const started = Date.now();
    const spawned = await Promise.all(
      Array.from({ length: n }, (_, i) => client.spawn('storm', { steps: 3, seed: i, record: false })),
    );
    log(`load: ${spawned.length} tasks spawned in ${Date.now() - started} ms`);
    let heapAtQuarter: Memory[] | undefined;
    let progressAt = Date.now();
    while (completed < n) {
      const now = await count(pool, `select count(*) as n from durable.tasks where state = 'completed'`);
      if (now > completed) progressAt = Date.now();
      completed = now;
      if (!heapAtQuarter && completed >= n / 4) heapAtQuarter = await Promise.all(workers.map(memory));
      if (Date.now() - progressAt > 60_000) {
        violations.push(`burst: ${n - completed} task(s) unfinished, none completed in 60 s`);
        break;
      }
      await sleep(100);
    }
    const durationMs = Date.now() - started;
    clearInterval(sampler);
    const heapAtEnd = await Promise.all(workers.map(memory));
    heapAtQuarter ??= heapAtEnd;

    const wrongResults = await count(
      pool,
      `select count(*) as n from durable.tasks t where t.name = 'storm' and (t.state <> 'completed' or t.result::jsonb is distinct from ${EXPECTED_STORM_RESULT_SQL})`,
    );
    if (wrongResults > 0) violations.push(`burst: ${wrongResults} task(s) not completed with their result`);
    const burstWorkers: BurstWorkerFigures[] = [];
    for (const [i, worker] of workers.entries()) {
      const peak = (list: typeof samples) => Math.max(0, ...list.map((sample) => sample.rss[i] ?? 0));
      const figures: BurstWorkerFigures = {
        pid: worker.pid,
        processed: await count(pool, `select count(*) as n from durable.runs where worker_id = $1 and state = 'completed'`, [`chaos-${worker.pid}`]),
        peakRssFirstHalf: peak(samples.filter((sample) => sample.completed < n / 2)),
        peakRssSecondHalf: peak(samples.filter((sample) => sample.completed >= n / 2)),
        peakRss: peak(samples),
        heapAtQuarter: heapAtQuarter[i].heapUsed,
        heapAtEnd: heapAtEnd[i].heapUsed,
      };
      burstWorkers.push(figures);
      if (figures.peakRssSecondHalf > 1.25 * figures.peakRssFirstHalf + 20 * MB) {
        violations.push(`burst: worker ${worker.pid}'s RSS grew: peak ${mb(figures.peakRssFirstHalf)} in the first half, ${mb(figures.peakRssSecondHalf)} in the second`);
      }
      if (figures.heapAtEnd > figures.heapAtQuarter + HEAP_MARGIN) {
        violations.push(`burst: worker ${worker.pid}'s live heap grew from ${mb(figures.heapAtQuarter)} to ${mb(figures.heapAtEnd)}`);
      }
      if (figures.processed === 0) violations.push(`burst: worker ${worker.pid} processed nothing`);
    }
    log(`load: burst of ${n} done in ${durationMs} ms`);

    // ---- Suspended
    const s = options.suspended;
    const before = await Promise.all(workers.map(memory));
    const suspendStarted = Date.now();
    await Promise.all(
      Array.from({ length: s }, (_, i) =>
        i % 2 === 0 ? client.spawn('nap', { ms: 3_600_000, i }) : client.spawn('wait', { event: `load-${i}`, i }),
      ),
    );
    let sleeping = 0;
    await eventually(
      async () => (sleeping = await count(pool, `select count(*) as n from durable.tasks where name in ('nap', 'wait') and state = 'sleeping'`)) === s,
      120_000,
      `${s} tasks to be asleep or waiting`,
      50,
    ).catch((error: Error) => violations.push(`suspended: ${error.message} (${sleeping} are)`));
    const timeToSuspendMs = Date.now() - suspendStarted;
    // The last handlers unwind right after their suspension commits.
    const stats = await eventually(async () => {
      const all = await Promise.all(workers.map((worker) => worker.request<{ executing: number; workerInFlight: number | null }>({ type: 'stats' })));
      return all.every((one) => one.executing === 0 && one.workerInFlight === 0) ? all : undefined;
    }, 10_000, 'the workers to have nothing in flight', 50).catch(async () =>
      Promise.all(workers.map((worker) => worker.request<{ executing: number; workerInFlight: number | null }>({ type: 'stats' }))),
    );
    const runningRuns = await count(pool, `select count(*) as n from durable.runs where state = 'running'`);
    const after = await Promise.all(workers.map(memory));

    // Every slot is free: as many quick tasks as all slots together complete while they sleep.
    const quickTasks = 2 * options.concurrency;
    const quickStarted = Date.now();
    const quick = await Promise.all(
      Array.from({ length: quickTasks }, (_, i) => client.spawn('storm', { steps: 3, seed: n + i, record: false })),
    );
    const quickResults = await Promise.all(
      quick.map(({ taskId }) => client.awaitResult(taskId, { timeoutMs: 30_000 }).catch((error: Error) => error.name)),
    );
    const quickTasksMs = Date.now() - quickStarted;
    const quickOk = quickResults.every((result, i) => JSON.stringify(result) === JSON.stringify({ sum: 3 * (n + i) * 10 + 6, steps: 3 }));
    if (!quickOk) violations.push(`suspended: quick tasks did not all complete while ${s} tasks slept: ${JSON.stringify(quickResults.slice(0, 4))}`);

    const suspendedWorkers: SuspendedWorkerFigures[] = [];
    for (const [i, worker] of workers.entries()) {
      const figures: SuspendedWorkerFigures = {
        pid: worker.pid,
        suspendedHere: await count(
          pool,
          `select count(*) as n from durable.runs r join durable.tasks t on t.id = r.task_id where t.name in ('nap', 'wait') and r.worker_id = $1`,
          [`chaos-${worker.pid}`],
        ),
        before: pick(before[i]),
        after: pick(after[i]),
        executing: stats[i].executing,
        workerInFlight: stats[i].workerInFlight,
      };
      suspendedWorkers.push(figures);
      if (figures.executing !== 0 || figures.workerInFlight !== 0) {
        violations.push(`suspended: worker ${worker.pid} has ${figures.executing} handler(s) executing, ${figures.workerInFlight} in flight`);
      }
      if (figures.after.heapUsed > figures.before.heapUsed + HEAP_MARGIN) {
        violations.push(`suspended: worker ${worker.pid}'s live heap grew from ${mb(figures.before.heapUsed)} to ${mb(figures.after.heapUsed)} with ${figures.suspendedHere} tasks suspended`);
      }
      if (figures.after.rss > figures.before.rss + RSS_MARGIN) {
        violations.push(`suspended: worker ${worker.pid}'s RSS grew from ${mb(figures.before.rss)} to ${mb(figures.after.rss)} with ${figures.suspendedHere} tasks suspended`);
      }
    }
    if (runningRuns !== 0) violations.push(`suspended: ${runningRuns} run(s) still running`);
    const sum = (pickOne: (figures: SuspendedWorkerFigures) => number) => suspendedWorkers.reduce((total, figures) => total + pickOne(figures), 0);
    const heapBytesPerTask = Math.round((sum((f) => f.after.heapUsed) - sum((f) => f.before.heapUsed)) / s);
    const rssBytesPerTask = Math.round((sum((f) => f.after.rss) - sum((f) => f.before.rss)) / s);

    // Wake them all: emit every event, and move the database clock past the sleeps.
    const resumeStarted = Date.now();
    const events = Array.from({ length: s }, (_, i) => i).filter((i) => i % 2 === 1);
    for (let from = 0; from < events.length; from += 100) {
      await Promise.all(events.slice(from, from + 100).map((i) => client.emitEvent(`load-${i}`, { event: `load-${i}` })));
    }
    await advanceTestClock(pool, 3_600_000 + 60_000);
    let resumed = 0;
    await eventually(
      async () => (resumed = await count(pool, `select count(*) as n from durable.tasks where name in ('nap', 'wait') and state = 'completed'`)) === s,
      180_000,
      `the ${s} suspended tasks to complete`,
      50,
    ).catch((error: Error) => violations.push(`suspended: ${error.message} (${resumed} did)`));
    const resumedMs = Date.now() - resumeStarted;
    const wrongResumed = await count(
      pool,
      `select count(*) as n from durable.tasks where (name = 'nap' and result::jsonb is distinct from '"rested"')
         or (name = 'wait' and result::jsonb is distinct from jsonb_build_object('event', 'load-' || (params->>'i')))`,
    );
    if (wrongResumed > 0) violations.push(`suspended: ${wrongResumed} task(s) completed with a wrong result`);

    const escaped = workers.reduce((total, worker) => total + worker.escaped, 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);
    for (const worker of workers) if (!worker.isAlive) violations.push(`worker ${worker.pid} died:\n${worker.output()}`);
    const exits = await Promise.all(workers.map((worker) => worker.terminate()));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) violations.push(`worker ${workers[i].pid} did not shut down cleanly on SIGTERM (${exit.signal ?? exit.code})`);
    });

    return {
      burst: {
        tasks: n, completed, wrongResults, durationMs, tasksPerSecond: Math.round((n / durationMs) * 1000), samples: samples.length,
        workers: burstWorkers,
      },
      suspended: {
        tasks: s, sleeping, timeToSuspendMs, runningRuns, quickTasks, quickTasksMs, heapBytesPerTask, rssBytesPerTask,
        resumedMs, completed: resumed, workers: suspendedWorkers,
      },
      violations,
    };
  } finally {
    clearInterval(sampler);
    await killAllWorkers();
    await client.close();
    await pool.end();
  }
}

function pick(memory: Memory): Memory {
  return { rss: memory.rss, heapUsed: memory.heapUsed };
}

export function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}
