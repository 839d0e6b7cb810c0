/**
 * Part 2, the database goes away: worker processes (one of them also the app that spawns, over
 * its injected DurableClient) run `storm` tasks on a dedicated PostgreSQL server; mid-run the
 * server is stopped for a few seconds and started again on the same port and data.
 *
 * What is proven:
 * - spawns attempted while the server is down reject, each within seconds, with
 *   DatabaseUnavailableError, and none of them is stored (nothing appears after the restart);
 * - the processes stay up (same pids, no ESCAPED unhandled rejection or uncaught exception),
 *   log the failure, reconnect by themselves, and the app's client spawns again after the
 *   restart without being restarted;
 * - every accepted task completes with its result; each step has one checkpoint written once;
 *   a step runs again only when the attempt running it failed and its first run was before the
 *   restart (it was in flight when the server went away): at most one re-execution per handler
 *   slot (workers x concurrency).
 */
import { DurableClient } from '../lib/index.js';
import type { EmbeddedPostgresServer } from '../devkit/index.js';
import { killAllWorkers } from '../devkit/processes.js';
import { eventually, sleep } from '../devkit/wait.js';
import { auditStorm, waitForTerminal, type StormReport } from './crash-storm.js';
import { chaosPool, count, installChaosTables } from './database.js';
import { startChaosWorker } from './workers.js';
import type { SpawnOutcome } from './worker.js';

export interface OutageOptions {
  /** A dedicated server: it is stopped and started. */
  server: EmbeddedPostgresServer;
  /** A fresh database on that server. */
  databaseUrl: string;
  /** Tasks spawned before the outage. */
  tasks: number;
  /** Tasks spawned after the restart. */
  tasksAfter: number;
  workers: number;
  concurrency: number;
  leaseMs: number;
  /** How long the server stays down (the spawns are attempted meanwhile). */
  outageMs: number;
  /** Spawns attempted while the server is down. */
  probes: number;
  stepPauseMs?: number;
  log?: (line: string) => void;
}

export interface OutageReport {
  tasks: number;
  outageMs: number;
  probes: number;
  /** Probes rejected with DatabaseUnavailableError. */
  probesRejected: number;
  /** The slowest rejection. */
  slowestRejectionMs: number;
  /** Probes found in the database after the restart (must be 0). */
  probesStored: number;
  /** From the restart until every task had finished. */
  recoveryMs: number;
  reExecutedSteps: number;
  bound: number;
  unexplained: StormReport['unexplained'];
  lostTasks: number;
  doubleCompletions: number;
  wrongResults: number;
  badCheckpoints: number;
  /** Worker processes that died or had to be replaced (must be 0). */
  restarts: number;
  escaped: number;
  /** The longest pause between two failed claims that a worker logged (its backoff grows). */
  maxBackoffMs: number;
  /** Lines the workers logged about the lost database, and a few of them. */
  reconnectLogLines: number;
  logSample: string[];
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
const RECONNECT_LOG = /claiming failed|LISTEN connection failed|idle connection lost|could not record the outcome/;

export async function runDatabaseOutage(options: OutageOptions): Promise<OutageReport> {
  const log = options.log ?? (() => undefined);
  const violations: string[] = [];
  const stepPauseMs = options.stepPauseMs ?? 50;
  // Apply the migrations, then the test's tables, before any worker starts.
  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 4 });
  await client.close();
  let pool = chaosPool(options.databaseUrl);
  try {
    await installChaosTables(pool);
    const workers = await Promise.all(
      Array.from({ length: options.workers }, () =>
        startChaosWorker({ databaseUrl: options.databaseUrl, concurrency: options.concurrency, leaseMs: options.leaseMs, logs: 'errors' }),
      ),
    );
    const app = workers[0];
    const spawn = async (tasks: { name: string; params: unknown }[], sequential = false) =>
      (await app.request<{ outcomes: SpawnOutcome[] }>({ type: 'spawn', tasks, sequential })).outcomes;
    const stormTask = (seed: number, extra: Record<string, unknown> = {}) => ({
      name: 'storm', params: { steps: 3 + (seed % 3), seed, pauseMs: stepPauseMs, ...extra },
    });

    const before = await spawn(Array.from({ length: options.tasks }, (_, i) => stormTask(i)));
    const refusedBefore = before.filter((outcome) => !outcome.ok);
    if (refusedBefore.length > 0) throw new Error(`spawns before the outage failed: ${JSON.stringify(refusedBefore.slice(0, 3))}`);

    // Mid-run: some tasks done, others running.
    await eventually(
      async () => (await count(pool, `select count(*) as n from durable.tasks where state = 'completed'`)) >= options.tasks / 5,
      120_000,
      'a fifth of the tasks to complete',
      50,
    );
    const running = await count(pool, `select count(*) as n from durable.runs where state = 'running'`);
    log(`outage: stopping the server with ${running} run(s) in flight`);
    await pool.end(); // its connections die with the server
    const downAt = Date.now();
    await options.server.stop();

    const probes = await spawn(Array.from({ length: options.probes }, (_, i) => stormTask(1_000_000 + i, { probe: i })), true);
    const rejected = probes.filter((outcome) => !outcome.ok && outcome.errorName === 'DatabaseUnavailableError');
    const slowestRejectionMs = Math.max(0, ...probes.map((outcome) => outcome.ms));
    if (rejected.length !== options.probes) {
      violations.push(`spawns while the database was down: ${rejected.length} of ${options.probes} rejected with DatabaseUnavailableError (${JSON.stringify(probes.filter((o) => !rejected.includes(o)).slice(0, 3))})`);
    }
    const unclear = rejected.filter((outcome) => !outcome.ok && !/PostgreSQL .*(unreachable|refused)/i.test(outcome.message));
    if (unclear.length > 0) violations.push(`rejections without a clear message: ${JSON.stringify(unclear.slice(0, 2))}`);
    await sleep(Math.max(0, downAt + options.outageMs - Date.now()));
    await options.server.start();
    const upAt = Date.now();
    const outageMs = upAt - downAt;
    log(`outage: server back after ${outageMs} ms`);
    pool = chaosPool(options.databaseUrl);
    const { rows: [{ restartedAt }] } = await pool.query<{ restartedAt: Date }>(`select clock_timestamp() as "restartedAt"`);

    // The app's client works again without a restart of anything.
    const after = await spawn(Array.from({ length: options.tasksAfter }, (_, i) => stormTask(options.tasks + i)));
    const refusedAfter = after.filter((outcome) => !outcome.ok);
    if (refusedAfter.length > 0) violations.push(`spawns after the restart failed: ${refusedAfter.length} (${JSON.stringify(refusedAfter.slice(0, 2))})`);
    const accepted = options.tasks + after.length - refusedAfter.length;

    await waitForTerminal(pool, accepted, 30_000 + options.leaseMs).catch((error: Error) => log(`outage: ${error.message}`));
    const recoveryMs = Date.now() - upAt;

    const probesStored = await count(pool, `select count(*) as n from durable.tasks where params->>'probe' is not null`);
    if (probesStored > 0) violations.push(`${probesStored} spawn(s) rejected during the outage were stored anyway`);

    const audit = await auditStorm(pool, {
      // A step re-runs only because the attempt running it failed when the database went away
      // under it: its earlier recording is from before the restart.
      explains: (effect, run) => run.state === 'failed' && effect.recorded_at < restartedAt,
      perProcess: options.concurrency,
      bound: options.workers * options.concurrency,
      boundText: `${options.workers} workers x concurrency ${options.concurrency}`,
    });
    violations.push(...audit.violations);

    // Each process came through on its own: still the same process, and it did work after the restart.
    let restarts = 0;
    let reconnectLogLines = 0;
    const logSample: string[] = [];
    let maxBackoffMs = 0;
    for (const worker of workers) {
      if (!worker.isAlive) {
        restarts += 1;
        violations.push(`worker ${worker.pid} died:\n${worker.output()}`);
      }
      const lines = worker.output().split('\n').filter((line) => RECONNECT_LOG.test(line));
      reconnectLogLines += lines.length;
      if (logSample.length === 0) logSample.push(...lines.slice(0, 6));
      const backoffs = lines.map((line) => /claiming failed, retrying in (\d+) ms/.exec(line)).filter((match) => match !== null).map((match) => Number(match[1]));
      maxBackoffMs = Math.max(maxBackoffMs, ...backoffs);
      if (backoffs.length < 2 || Math.max(...backoffs) <= Math.min(...backoffs)) {
        violations.push(`worker ${worker.pid} did not back off between failed claims: ${JSON.stringify(backoffs)}`);
      }
      if (lines.length === 0) violations.push(`worker ${worker.pid} logged nothing about the lost database:\n${worker.output()}`);
      const finishedAfter = await count(
        pool,
        `select count(*) as n from durable.runs where worker_id = $1 and state = 'completed' and finished_at > $2`,
        [`chaos-${worker.pid}`, restartedAt],
      );
      if (finishedAfter === 0) violations.push(`worker ${worker.pid} completed nothing after the restart`);
    }
    const escaped = workers.reduce((sum, worker) => sum + worker.escaped, 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);
    const exits = await Promise.all(workers.map((worker) => worker.terminate()));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) violations.push(`worker ${workers[i].pid} did not shut down cleanly on SIGTERM (${exit.signal ?? exit.code})`);
    });

    return {
      tasks: accepted, outageMs, probes: options.probes, probesRejected: rejected.length, slowestRejectionMs, probesStored,
      recoveryMs, bound: options.workers * options.concurrency, restarts, escaped, maxBackoffMs, reconnectLogLines, logSample,
      ...audit.figures, violations,
    };
  } finally {
    await killAllWorkers();
    await pool.end().catch(() => undefined);
  }
}
