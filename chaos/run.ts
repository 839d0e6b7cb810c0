/**
 * `npm run chaos` (`tsx --tsconfig chaos/tsconfig.json chaos/run.ts`): the full chaos suite,
 * "your workflow finishes, once, whatever happens", with its figures.
 *
 *   1. crash storm: worker processes SIGKILLed one after another while thousands of tasks run;
 *   2. the database goes away: the server stopped and started mid-run; a worker cut off past its
 *      lease is fenced off;
 *   3. load and memory: a burst of tasks through two workers, and thousands of suspended tasks;
 *   4. spawns held open: app transactions hold spawns (keys, new queues) while plain spawns go on;
 *   5. suspend storm: tasks suspend and resume every few ms, steps beside sleeps, on workers with
 *      fixed worker ids that are SIGKILLed and restarted under the same id (the claim epoch);
 *   6. poison among thousands: tasks whose rows break the claim's sweeps, among thousands of
 *      healthy ones on the same queue;
 *   7. statement-timeout storm: a small queryTimeoutMs while a saboteur holds the locks durable's
 *      statements need and cuts connections off (DatabaseTimeoutError, OutcomeUnknownError);
 *   8. fan-out: parents each spawn 1,000 child tasks and join them all, over the crash storm (no
 *      lost child, no second child, every parent completes once with the right fan-in).
 *   9. crash storm under a concurrency limit: SIGKILLed workers while `concurrency: 3` tasks run;
 *      the limit is never exceeded, and a killed worker's slot comes back by lease expiry.
 *  10. schedule ticks: three worker processes each declare the same every-second schedule and run
 *      for a minute of real time: exactly one task per tick second, none missing, each with its
 *      tick in headers['durable.scheduledFor'].
 *
 * Parts 1 and 3-10 run on an embedded PostgreSQL this script starts (or on the server of
 * CHAOS_DATABASE_URL, an admin URL allowed to CREATE DATABASE); part 2 always starts a dedicated
 * embedded server, since it stops it. Sizes come from the environment:
 *   CHAOS_TASKS (3000), CHAOS_WORKERS (4), CHAOS_KILLS (30), CHAOS_KILL_INTERVAL_MS (300),
 *   CHAOS_LOAD_TASKS (20000), CHAOS_SUSPENDED (5000), CHAOS_CONTENTION_MS (20000),
 *   CHAOS_SUSPEND_TASKS (1500), CHAOS_SUSPEND_KILLS (20), CHAOS_POISON_HEALTHY (5000),
 *   CHAOS_POISON_EACH (5), CHAOS_TIMEOUT_MS (30000), CHAOS_FANOUT_PARENTS (4), CHAOS_FANOUT_CHILDREN (1000),
 *   CHAOS_FANOUT_KILLS (30), CHAOS_LIMIT_TASKS (300), CHAOS_LIMIT_KILLS (10), CHAOS_TICKS_MS (62000),
 *   CHAOS_SEED, CHAOS_PARTS ("1,2,3,4,5,6,7,8,9,10").
 * Exits 1 if anything was lost, completed twice, or re-executed beyond what the kills explain,
 * or a run was stranded.
 */
import { createDatabase, withClient } from '../devkit/databases.js';
import { numberFromEnv as env } from '../devkit/env.js';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../devkit/index.js';
import { cleanUpWorkers } from '../devkit/processes.js';
import { runCrashStorm } from './crash-storm.js';
import { runDatabaseOutage } from './database-outage.js';
import { runFanOut } from './fan-out.js';
import { runLeaseFencing } from './lease-fencing.js';
import { runLimitStorm } from './limit-storm.js';
import { runLoad } from './load.js';
import { runPoison } from './poison.js';
import {
  formatContention, formatFanOut, formatFencing, formatLoad, formatOutage, formatPoison, formatStorm, formatSuspendStorm, formatTimeoutStorm,
} from './report.js';
import { runSpawnContention } from './spawn-contention.js';
import { runSuspendStorm } from './suspend-storm.js';
import { formatTicks, runScheduleTicks } from './schedule-ticks.js';
import { runTimeoutStorm } from './timeout-storm.js';

const parts = new Set((process.env.CHAOS_PARTS ?? '1,2,3,4,5,6,7,8,9,10').split(',').map((part) => part.trim()));
const servers: EmbeddedPostgresServer[] = [];
/** A fresh database for one part, with the test clock on (the load run moves it forward). */
const chaosDatabase = (adminUrl: string) => createDatabase(adminUrl, { prefix: 'durable_chaos', testClock: true });
const violations: string[] = [];
const log = (line: string) => console.log(`  ${line}`);

async function cleanUp(): Promise<void> {
  await cleanUpWorkers().catch(() => undefined);
  for (const server of servers.splice(0)) await server.destroy().catch(() => undefined);
}

process.once('SIGINT', () => {
  console.log('\ninterrupted: cleaning up');
  void cleanUp().finally(() => process.exit(130));
});

function section(title: string, body: string, found: string[]): void {
  console.log(`\n## ${title}\n\n${body}\n`);
  if (found.length > 0) {
    console.log(`VIOLATIONS (${found.length}):`);
    for (const violation of found) console.log(`  - ${violation}`);
    violations.push(...found.map((violation) => `${title}: ${violation}`));
  } else {
    console.log('ok: nothing lost, nothing completed twice, every re-execution explained');
  }
}

/** An admin URL: CHAOS_DATABASE_URL's server, or an embedded one started here. */
async function mainServer(): Promise<string> {
  const external = process.env.CHAOS_DATABASE_URL;
  if (external) {
    await withClient(external, (client) => client.query('select 1'));
    return external;
  }
  const server = await startEmbeddedPostgres({ prefix: 'durable-chaos-pg-' });
  servers.push(server);
  return server.adminUrl;
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log('# nestjs-durable chaos suite');
  const adminUrl = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].some((part) => parts.has(part)) ? await mainServer() : '';

  if (parts.has('1')) {
    const db = await chaosDatabase(adminUrl);
    const options = {
      databaseUrl: db.url, tasks: env('CHAOS_TASKS', 3000), minSteps: 3, maxSteps: 5, workers: env('CHAOS_WORKERS', 4),
      kills: env('CHAOS_KILLS', 30), killIntervalMs: env('CHAOS_KILL_INTERVAL_MS', 300), concurrency: 1, leaseMs: 2000,
      seed: process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : undefined, log,
    };
    console.log(`\n1. crash storm: ${options.tasks} tasks of 3-5 steps, ${options.workers} worker processes (concurrency 1, lease ${options.leaseMs} ms), ${options.kills} SIGKILLs every ${options.killIntervalMs} ms`);
    const report = await runCrashStorm(options);
    section('1. Crash storm', formatStorm(report), report.violations);
    await db.drop();
  }

  if (parts.has('2')) {
    console.log('\n2a. the database goes away: a dedicated embedded PostgreSQL, stopped for 3 s mid-run and started again on the same data');
    const server = await startEmbeddedPostgres({ prefix: 'durable-chaos-pg-' });
    servers.push(server);
    const db = await chaosDatabase(server.adminUrl);
    const outage = await runDatabaseOutage({
      server, databaseUrl: db.url, tasks: 400, tasksAfter: 50, workers: 2, concurrency: 4, leaseMs: 2000, outageMs: 3000, probes: 20, log,
    });
    section('2a. Database outage', formatOutage(outage), outage.violations);
    await servers.splice(servers.indexOf(server), 1)[0].destroy();

    console.log('\n2b. a worker cut off from the database past its lease (network partition through a TCP proxy)');
    const fencingDb = await chaosDatabase(adminUrl);
    const fencing = await runLeaseFencing({ databaseUrl: fencingDb.url, leaseMs: 1500, log });
    section('2b. Lease fencing', formatFencing(fencing), fencing.violations);
    await fencingDb.drop();
  }

  if (parts.has('3')) {
    const db = await chaosDatabase(adminUrl);
    const options = { databaseUrl: db.url, tasks: env('CHAOS_LOAD_TASKS', 20_000), suspended: env('CHAOS_SUSPENDED', 5000), concurrency: 5, log };
    console.log(`\n3. load and memory: a burst of ${options.tasks} tasks through 2 worker processes (concurrency ${options.concurrency}), then ${options.suspended} tasks asleep or waiting at once`);
    const report = await runLoad(options);
    section('3. Load and memory', formatLoad(report), report.violations);
    await db.drop();
  }

  if (parts.has('4')) {
    const db = await chaosDatabase(adminUrl);
    const options = { databaseUrl: db.url, durationMs: env('CHAOS_CONTENTION_MS', 20_000), holders: 8, minHoldMs: 1500, callers: 20, collisions: 3, log };
    console.log(`\n4. spawns held open: ${options.holders} app transactions at a time hold a spawn (its key, or a new queue) for ${options.minHoldMs}-${2 * options.minHoldMs} ms with ${options.collisions} plain spawns colliding with each, while ${options.callers} callers spawn unrelated tasks, for ${options.durationMs / 1000} s`);
    const report = await runSpawnContention(options);
    section('4. Spawns held open', formatContention(report), report.violations);
    await db.drop();
  }

  if (parts.has('5')) {
    const db = await chaosDatabase(adminUrl);
    const options = {
      databaseUrl: db.url, tasks: env('CHAOS_SUSPEND_TASKS', 1500), minRounds: 3, maxRounds: 6, workers: 3, concurrency: 4,
      kills: env('CHAOS_SUSPEND_KILLS', 20), killIntervalMs: 1500, leaseMs: 2000, sleepMs: 3, pauseMs: 0, writeDelayMs: 30,
      seed: process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : undefined, log,
    };
    console.log(`\n5. suspend storm: ${options.tasks} tasks of ${options.minRounds}-${options.maxRounds} steps beside or between ${options.sleepMs} ms sleeps, ${options.workers} workers with fixed ids (concurrency ${options.concurrency}, lease ${options.leaseMs} ms) whose batched writes reach the database 0-${options.writeDelayMs} ms late, ${options.kills} SIGKILLs every ${options.killIntervalMs} ms, each worker restarted under its id`);
    const report = await runSuspendStorm(options);
    section('5. Suspend storm', formatSuspendStorm(report), report.violations);
    await db.drop();
  }

  if (parts.has('6')) {
    const db = await chaosDatabase(adminUrl);
    const options = { databaseUrl: db.url, healthy: env('CHAOS_POISON_HEALTHY', 5000), poisonEach: env('CHAOS_POISON_EACH', 5), workers: 3, concurrency: 10, leaseMs: 5000, log };
    console.log(`\n6. poison among thousands: ${options.healthy} healthy tasks and ${options.poisonEach} poison rows of each kind (a stored retry factor of 0, a run that cannot be failed) on one queue, ${options.workers} worker processes (concurrency ${options.concurrency})`);
    const report = await runPoison(options);
    section('6. Poison among thousands', formatPoison(report), report.violations);
    await db.drop();
  }

  if (parts.has('7')) {
    const db = await chaosDatabase(adminUrl);
    const options = {
      databaseUrl: db.url, durationMs: env('CHAOS_TIMEOUT_MS', 30_000), workers: 3, concurrency: 4, leaseMs: 5000, queryTimeoutMs: 300,
      callers: 4, spawnPauseMs: 20, seed: process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : undefined, log,
    };
    console.log(`\n7. statement-timeout storm: for ${options.durationMs / 1000} s, ${options.workers} workers (concurrency ${options.concurrency}, lease ${options.leaseMs} ms) and ${options.callers} spawners with queryTimeoutMs ${options.queryTimeoutMs}, while a saboteur holds durable's tables and rows locked past the timeouts or freezes one process's connections for 1.5-2.5 s`);
    const report = await runTimeoutStorm(options);
    section('7. Statement-timeout storm', formatTimeoutStorm(report), report.violations);
    await db.drop();
  }

  if (parts.has('8')) {
    const db = await chaosDatabase(adminUrl);
    const options = {
      databaseUrl: db.url, parents: env('CHAOS_FANOUT_PARENTS', 4), children: env('CHAOS_FANOUT_CHILDREN', 1000), batch: 20,
      workers: 4, concurrency: 4, kills: env('CHAOS_FANOUT_KILLS', 30), killIntervalMs: 1000, leaseMs: 2000, stepPauseMs: 5,
      seed: process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : undefined, log,
    };
    console.log(`\n8. fan-out: ${options.parents} parents each spawning ${options.children} one-step children (${options.batch} spawns at once) and joining them all, ${options.workers} worker processes (concurrency ${options.concurrency}, lease ${options.leaseMs} ms), ${options.kills} SIGKILLs every ${options.killIntervalMs} ms`);
    const report = await runFanOut(options);
    section('8. Fan-out', formatFanOut(report), report.violations);
    await db.drop();
  }

  if (parts.has('9')) {
    const db = await chaosDatabase(adminUrl);
    const options = {
      databaseUrl: db.url, tasks: env('CHAOS_LIMIT_TASKS', 300), workers: 3, concurrency: 4, kills: env('CHAOS_LIMIT_KILLS', 10),
      killIntervalMs: 400, leaseMs: 2000, pauseMs: 60, log,
    };
    console.log(`\n9. crash storm under a concurrency limit: ${options.tasks} tasks limited to 3 at once, ${options.workers} workers of ${options.concurrency} slots, ${options.kills} SIGKILLs every ${options.killIntervalMs} ms (lease ${options.leaseMs} ms)`);
    const report = await runLimitStorm(options);
    const body = [
      `tasks completed        ${report.completed} / ${report.tasks}`,
      `kills / workers        ${report.kills} / ${report.workersStarted}`,
      `most in flight at once ${report.maxInFlight} (limit ${report.limit}; killed executions counted until their lease expired)`,
      `lease expiries         ${report.leaseExpiries}`,
      `duration               ${(report.durationMs / 1000).toFixed(1)} s`,
    ].join('\n');
    section('9. Crash storm under a concurrency limit', body, report.violations);
    await db.drop();
  }

  if (parts.has('10')) {
    const db = await chaosDatabase(adminUrl);
    const options = { databaseUrl: db.url, workers: 3, durationMs: env('CHAOS_TICKS_MS', 62_000), log };
    console.log(`\n10. schedule ticks: ${options.workers} worker processes, one every-second schedule (\`* * * * * *\`) declared by each, for ${options.durationMs / 1000} s of real time`);
    const report = await runScheduleTicks(options);
    section('10. Schedule ticks', formatTicks(report), report.violations);
    await db.drop();
  }

  console.log(`\n# ${violations.length === 0 ? 'PASSED' : `FAILED: ${violations.length} violation(s)`} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

try {
  await main();
} catch (error) {
  console.error(error);
  violations.push(`the run failed: ${(error as Error).message}`);
} finally {
  await cleanUp();
}
process.exit(violations.length === 0 ? 0 : 1);
