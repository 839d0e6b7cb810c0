/**
 * Part 5, the suspend storm (issue 13, item 1: the claim epoch): worker processes with FIXED
 * worker ids run `ledger` tasks whose steps interleave with sleeps of a few milliseconds, some
 * of them beside a step (`Promise.all([ctx.step(...), ctx.sleepFor(...)])`), so that a run is
 * suspended and claimed again every few milliseconds, often by the same worker id, while a
 * suspended execution's step is still on its way. Meanwhile a killer SIGKILLs a random worker
 * and starts its replacement under the same worker id.
 *
 * What is proven, from the test's own records (chaos/ledger.ts, chaos/database.ts):
 * - no checkpoint is ever replaced (a trigger logs every UPDATE), each step has one checkpoint
 *   of the right value, inserted once, while the claim of the execution that wrote it was live
 *   (a suspended execution's late write is never accepted), and every step value the library
 *   resolved to user code is the stored one;
 * - every task completes once, with the values its checkpoints hold;
 * - a step function runs again only if the execution that ran it before was suspended by its
 *   parallel sleep (the step was in flight: at-least-once) or was in a killed process (at most
 *   `concurrency` per kill); a lease expires, and a claim goes unexecuted, only for a killed
 *   process.
 */
import { DurableClient } from '../lib/index.js';
import { killAllWorkers, type WorkerProcess } from '../devkit/processes.js';
import { TcpProxy } from '../devkit/tcp-proxy.js';
import { eventually, sleep } from '../devkit/wait.js';
import { mulberry32, waitForTerminal } from './crash-storm.js';
import { chaosPool, count, installChaosTables } from './database.js';
import { auditLedger, installLedgerTables, type Claim, type LedgerFigures } from './ledger.js';
import { startChaosWorker } from './workers.js';

export interface SuspendStormOptions {
  /** A fresh database. */
  databaseUrl: string;
  tasks: number;
  /** Steps per task: a random number in [min, max]. */
  minRounds: number;
  maxRounds: number;
  /** Worker processes, each with its own fixed worker id. */
  workers: number;
  concurrency: number;
  kills: number;
  killIntervalMs: number;
  leaseMs: number;
  /** The sleeps' length (default 3). */
  sleepMs?: number;
  /** Time a step function spends after recording its run (default 0). */
  pauseMs?: number;
  /**
   * The workers reach the database through a TCP proxy that holds each batched write
   * (`write_batch`) for a random 0..writeDelayMs, as a slow network or a busy connection would,
   * so that a suspended execution's write can reach the server after the next claim of its run
   * (default 0: no proxy).
   */
  writeDelayMs?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface SuspendStormReport extends LedgerFigures {
  workers: number;
  concurrency: number;
  kills: number;
  workersStarted: number;
  /** kills x concurrency. */
  killBound: number;
  durationMs: number;
  completedAtLastKill: number;
  escaped: number;
  seed: number;
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

/** One process that ran under a worker id, from its start until it was killed (if it was). */
interface Incarnation {
  workerId: string;
  worker?: WorkerProcess;
  startedAt: number;
  killedAt?: number;
}

export async function runSuspendStorm(options: SuspendStormOptions): Promise<SuspendStormReport> {
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? Date.now() % 1_000_000;
  const random = mulberry32(seed);
  const target = new URL(options.databaseUrl);
  const writeDelayMs = options.writeDelayMs ?? 0;
  const delay = (chunk: Buffer, toServer: boolean) => (toServer && chunk.includes('write_batch(') ? Math.random() * writeDelayMs : 0);
  const proxy = writeDelayMs > 0 ? new TcpProxy({ host: target.hostname, port: Number(target.port) }, { delay }) : undefined;
  const durableUrl = await proxy?.listen(options.databaseUrl);
  const settings = { databaseUrl: options.databaseUrl, durableUrl, concurrency: options.concurrency, leaseMs: options.leaseMs, pollIntervalMs: 100 };
  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 4 }); // applies the migrations
  const pool = chaosPool(options.databaseUrl);
  const incarnations: Incarnation[] = [];
  const current = new Map<string, Incarnation>();
  const replacements: Promise<unknown>[] = [];
  try {
    await installChaosTables(pool);
    await installLedgerTables(pool);
    const start = async (workerId: string) => {
      const incarnation: Incarnation = { workerId, startedAt: Date.now() };
      incarnations.push(incarnation);
      current.set(workerId, incarnation);
      incarnation.worker = await startChaosWorker({ ...settings, workerId });
    };
    await Promise.all(Array.from({ length: options.workers }, (_, i) => start(`fixed-${i}`)));
    log(`suspend storm: ${options.workers} workers up (fixed-0..${options.workers - 1}); spawning ${options.tasks} tasks (seed ${seed})`);

    // Tasks are spawned as slots free up: with (almost) no backlog, a run whose sleep is due is
    // claimed again at once, often by the worker whose execution of it just suspended. One
    // worker's worth more, for the runs of a killed worker waiting for their lease to expire.
    const started = Date.now();
    const slots = (options.workers + 1) * options.concurrency;
    let spawned = 0;
    const spawner = (async () => {
      while (spawned < options.tasks) {
        const done = await count(pool, `select count(*) as n from durable.tasks where state in ('completed', 'failed', 'cancelled')`);
        const batch = Math.min(options.tasks - spawned, slots - (spawned - done));
        await Promise.all(Array.from({ length: Math.max(0, batch) }, () => client.spawn('ledger', {
          seed: spawned++, rounds: options.minRounds + Math.floor(random() * (options.maxRounds - options.minRounds + 1)),
          pauseMs: options.pauseMs ?? 0, sleepMs: options.sleepMs ?? 3,
        }, { maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 50 } })));
        await sleep(10);
      }
    })();

    await eventually(async () => (await count(pool, `select count(*) as n from public.chaos_step_runs`)) > 0, 60_000, 'the first step', 50);
    for (let k = 0; k < options.kills; k++) {
      await sleep(options.killIntervalMs);
      const victim = await eventually(() => {
        const up = [...current.values()].filter((i) => (i.worker?.uptimeMs ?? 0) >= options.killIntervalMs);
        return up.length === 0 ? undefined : up[Math.floor(random() * up.length)];
      }, 90_000, 'a worker that is up', 50);
      victim.killedAt = Date.now();
      await victim.worker!.kill();
      replacements.push(start(victim.workerId)); // the same worker id, a new process
    }
    const completedAtLastKill = await count(pool, `select count(*) as n from durable.tasks where state = 'completed'`);
    log(`suspend storm: ${options.kills} kills done; ${completedAtLastKill}/${options.tasks} tasks completed at the last kill`);
    await Promise.all(replacements);
    await spawner;
    await waitForTerminal(pool, options.tasks, 30_000 + options.leaseMs).catch((error: Error) => log(`suspend storm: ${error.message}`));
    const durationMs = Date.now() - started;

    const violations: string[] = [];
    const survivors = [...current.values()].filter((i) => i.worker?.isAlive);
    const exits = await Promise.all(survivors.map((i) => i.worker!.terminate()));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) violations.push(`worker ${survivors[i].workerId} did not shut down cleanly on SIGTERM (${exit.signal ?? exit.code})`);
    });
    for (const i of incarnations) {
      if (i.killedAt === undefined && !survivors.includes(i)) violations.push(`worker ${i.workerId} (${i.worker?.pid}) died without being killed:\n${i.worker?.output()}`);
    }
    const escaped = incarnations.reduce((sum, i) => sum + (i.worker?.escaped ?? 0), 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);

    // A claim's process: the last one started under its worker id before the claim (the next
    // one starts only after its predecessor exited).
    const killedClaim = (claim: Claim) =>
      incarnations.filter((i) => i.workerId === claim.worker && i.startedAt <= claim.at.getTime()).at(-1)?.killedAt !== undefined;
    const killed = new Set(incarnations.filter((i) => i.killedAt !== undefined).map((i) => i.worker!.pid));
    const audit = await auditLedger(pool, {
      killed, concurrency: options.concurrency, failures: false, expiry: killedClaim, unexecuted: killedClaim,
    });
    violations.push(...audit.violations);
    const killBound = killed.size * options.concurrency;
    if (audit.figures.byKill > killBound) violations.push(`${audit.figures.byKill} steps re-run by kills, more than ${killed.size} kills x concurrency ${options.concurrency}`);
    if (audit.figures.sameWorkerResumes === 0) violations.push('no run was resumed by the worker id that suspended it: the storm did not test the claim epoch');
    return {
      ...audit.figures, workers: options.workers, concurrency: options.concurrency, kills: killed.size, workersStarted: incarnations.length,
      killBound, durationMs, completedAtLastKill, escaped, seed, violations,
    };
  } finally {
    await killAllWorkers();
    await proxy?.close();
    await client.close();
    await pool.end();
  }
}
