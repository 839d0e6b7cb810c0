/**
 * Part 8, fan-out over the crash storm (issue 14): `fanout` parents each spawn N one-step
 * `storm` children (ctx.spawn, a batch at a time) and join them all (ctx.joinAll), while a
 * killer SIGKILLs a random worker every few hundred milliseconds and starts a replacement, so
 * parents die mid-fan-out, between a child's completion and their wake-up, and after it.
 *
 * What is proven, from the database and the test's own logs (chaos/database.ts, chaos/ledger.ts):
 * - no lost child and no second child: each parent has exactly N children, one per spawn step
 *   (seeds seed * 100000 + 0..N-1, each once), each spawn checkpoint `spawn:c<i>` written once
 *   and naming that child;
 * - the children are audited like the crash storm's tasks (auditStorm): each completed once with
 *   its right result, one checkpoint written once, re-executions only by kills;
 * - every parent completes exactly once (the completion log), its join checkpoint is written
 *   once and holds the N results in spawn order, and its result is the right fan-in;
 * - the fan-in wakes each parent once: its run is suspended at most once (the run log).
 */
import type pg from 'pg';
import { DurableClient } from '../lib/index.js';
import { killAllWorkers, type WorkerProcess } from '../devkit/processes.js';
import { eventually, sleep } from '../devkit/wait.js';
import { auditStorm, mulberry32, stormRules, waitForTerminal } from './crash-storm.js';
import { chaosPool, count, installChaosTables } from './database.js';
import { installLedgerTables } from './ledger.js';
import { startChaosWorker } from './workers.js';

export interface FanOutOptions {
  /** A fresh database. */
  databaseUrl: string;
  parents: number;
  /** Children per parent. */
  children: number;
  /** Spawns a parent makes at once (default 20). */
  batch?: number;
  workers: number;
  concurrency: number;
  kills: number;
  killIntervalMs: number;
  leaseMs: number;
  /** Time each child's step spends after recording its effect (default 5). */
  stepPauseMs?: number;
  seed?: number;
  log?: (line: string) => void;
}

export interface FanOutFigures {
  /** Parents not completed, or completed with a wrong result. */
  lostParents: number;
  wrongParentResults: number;
  /** Spawn steps without their child, and children beyond one per spawn step. */
  lostChildren: number;
  secondChildren: number;
  /** Spawn checkpoints not written exactly once, or not naming their child. */
  badSpawnCheckpoints: number;
  /** Parents whose join checkpoint is missing, written more than once, or holds wrong results. */
  badJoins: number;
  /** Suspensions of the parents' runs (a fan-in wakes each once): the most for one parent, and in all. */
  maxParentSuspensions: number;
  parentSuspensions: number;
  /** Attempts of the parents (above 1: a kill hit the parent). */
  parentAttempts: number;
}

export interface FanOutReport extends FanOutFigures {
  parents: number;
  children: number;
  kills: number;
  killedPids: number[];
  workersStarted: number;
  concurrency: number;
  durationMs: number;
  /** Children completed at the last kill. */
  completedAtLastKill: number;
  /** The children's audit (as the crash storm's). */
  lostTasks: number;
  doubleCompletions: number;
  wrongResults: number;
  badCheckpoints: number;
  reExecutedSteps: number;
  unexplained: number;
  bound: number;
  escaped: number;
  seed: number;
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

export async function runFanOut(options: FanOutOptions): Promise<FanOutReport> {
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? Date.now() % 1_000_000;
  const random = mulberry32(seed);
  const settings = { databaseUrl: options.databaseUrl, concurrency: options.concurrency, leaseMs: options.leaseMs, pollIntervalMs: 100 };
  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 4 }); // applies the migrations
  const pool = chaosPool(options.databaseUrl);
  const all: WorkerProcess[] = [];
  const killed = new Set<number>();
  const replacements: Promise<unknown>[] = [];
  try {
    await installChaosTables(pool);
    await installLedgerTables(pool);
    const startWorker = async () => {
      const worker = await startChaosWorker(settings);
      all.push(worker);
      return worker;
    };
    await Promise.all(Array.from({ length: options.workers }, startWorker));
    log(`fan-out: ${options.workers} workers up; spawning ${options.parents} parents of ${options.children} children (seed ${seed})`);

    const started = Date.now();
    for (let p = 0; p < options.parents; p++) {
      await client.spawn('fanout', { children: options.children, seed: p, batch: options.batch ?? 20, pauseMs: options.stepPauseMs ?? 5 });
    }
    // The killer starts once the parents are spawning: kills land mid-fan-out as well as later.
    await eventually(async () => (await count(pool, `select count(*) as n from durable.tasks where parent_task_id is not null`)) > 0, 60_000, 'the first child', 20);
    const killedAt: number[] = [];
    for (let k = 0; k < options.kills; k++) {
      await sleep(options.killIntervalMs);
      const up = () => all.filter((worker) => worker.isAlive && worker.uptimeMs >= options.killIntervalMs);
      const victim = await eventually(() => (up().length === 0 ? undefined : up()[Math.floor(random() * up().length)]), 90_000, 'a worker that is up', 50);
      killed.add(victim.pid);
      killedAt.push(Date.now());
      await victim.kill();
      replacements.push(startWorker());
    }
    const completedAtLastKill = await count(pool, `select count(*) as n from durable.tasks where name = 'storm' and state = 'completed'`);
    log(`fan-out: ${options.kills} kills done; ${completedAtLastKill}/${options.parents * options.children} children completed at the last kill`);
    await Promise.all(replacements);
    await waitForTerminal(pool, options.parents * (options.children + 1), 30_000 + options.leaseMs).catch((error: Error) => log(`fan-out: ${error.message}`));
    const durationMs = Date.now() - started;

    const violations: string[] = [];
    const survivors = all.filter((worker) => worker.isAlive);
    const exits = await Promise.all(survivors.map((worker) => worker.terminate()));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) violations.push(`worker ${survivors[i].pid} did not shut down cleanly on SIGTERM (${exit.signal ?? exit.code})`);
    });
    for (const worker of all) {
      if (!killed.has(worker.pid) && !survivors.includes(worker)) violations.push(`worker ${worker.pid} died without being killed:\n${worker.output()}`);
    }
    const escaped = all.reduce((sum, worker) => sum + worker.escaped, 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);

    const children = await auditStorm(pool, stormRules(killed, options.concurrency));
    violations.push(...children.violations);
    const fanOut = await auditFanOut(pool, options.parents, options.children);
    violations.push(...fanOut.violations);
    return {
      parents: options.parents, children: options.children, kills: killed.size, killedPids: [...killed], workersStarted: all.length,
      concurrency: options.concurrency, durationMs, completedAtLastKill, bound: killed.size * options.concurrency, escaped, seed,
      ...children.figures, ...fanOut.figures, violations,
    };
  } finally {
    await killAllWorkers();
    await client.close();
    await pool.end();
  }
}

/** The parents' side of the audit (see the file's comment); the children's is auditStorm. */
export async function auditFanOut(pool: pg.Pool, parents: number, n: number): Promise<{ figures: FanOutFigures; violations: string[] }> {
  const violations: string[] = [];
  const note = (what: string, examples: unknown[]) => {
    if (examples.length > 0) violations.push(`${what}: ${examples.length} (e.g. ${JSON.stringify(examples.slice(0, 3))})`);
  };
  const rows = async (sql: string, values: unknown[] = []) => (await pool.query(sql, values)).rows;

  const spawned = await count(pool, `select count(*) as n from durable.tasks where name = 'fanout' and parent_task_id is null`);
  if (spawned !== parents) violations.push(`${spawned} fanout parents in the database, ${parents} spawned`);
  const lost = await rows(`select id, state, attempts, error from durable.tasks where name = 'fanout' and state <> 'completed'`);
  note('parents not completed (lost)', lost);
  // sum over i of ((seed * 100000 + i) * 10 + 1)
  const wrong = await rows(
    `select id, result from durable.tasks t where name = 'fanout' and state = 'completed' and result::jsonb is distinct from jsonb_build_object(
       'children', $1::int, 'sum', $1::bigint * ((t.params->>'seed')::bigint * 1000000 + 1) + 10 * ($1::bigint * ($1::bigint - 1) / 2))`,
    [n],
  );
  note('parents completed with a wrong fan-in result', wrong);
  const strays = await rows(
    `select c.id, c.name, c.parent_task_id from durable.tasks c left join durable.tasks p on p.id = c.parent_task_id
     where (c.name = 'storm') <> (p.name = 'fanout') or (c.name = 'storm' and p.id is null) or c.name not in ('storm', 'fanout')`,
  );
  note('tasks that are neither a fanout parent nor one of its storm children', strays);

  // One child per spawn step: seed * 100000 + i for i in 0..n-1, each exactly once.
  const perStep = await rows(
    `with expected as (
       select p.id as parent, g.i, (p.params->>'seed')::int * 100000 + g.i as child_seed
       from durable.tasks p cross join generate_series(0, $1::int - 1) g(i) where p.name = 'fanout'
     ), actual as (
       select c.parent_task_id as parent, (c.params->>'seed')::int as child_seed, count(*)::int as n
       from durable.tasks c where c.parent_task_id is not null group by 1, 2
     )
     select coalesce(e.parent, a.parent) as parent, e.i, coalesce(e.child_seed, a.child_seed) as child_seed, coalesce(a.n, 0) as n,
            e.i is null as unexpected
     from expected e full join actual a on a.parent = e.parent and a.child_seed = e.child_seed
     where a.n is distinct from 1 or e.i is null`,
    [n],
  );
  const lostChildren = perStep.filter((row) => row.n === 0);
  const secondChildren = perStep.filter((row) => row.n > 1 || row.unexpected);
  note('spawn steps without their child (lost children)', lostChildren);
  note('children beyond one per spawn step (second children)', secondChildren);

  // Each spawn checkpoint written once, naming the child of its step.
  const badSpawns = await rows(
    `with expected as (
       select p.id as parent, 'spawn:c' || g.i as name, (p.params->>'seed')::int * 100000 + g.i as child_seed
       from durable.tasks p cross join generate_series(0, $1::int - 1) g(i) where p.name = 'fanout'
     ), writes as (
       select task_id, name, count(*)::int as n from public.chaos_checkpoint_writes where name like 'spawn:%' group by 1, 2
     )
     select e.parent, e.name, w.n as writes, cp.value as handle, c.id as child from expected e
       left join durable.checkpoints cp on cp.task_id = e.parent and cp.name = e.name
       left join writes w on w.task_id = e.parent and w.name = e.name
       left join durable.tasks c on c.id = (cp.value->>'taskId')::uuid
     where cp.task_id is null or w.n is distinct from 1 or c.id is null or c.parent_task_id <> e.parent
        or (c.params->>'seed')::int <> e.child_seed or cp.value->>'taskName' <> 'storm'
     union all
     select cp.task_id, cp.name, null, cp.value, null from durable.checkpoints cp join durable.tasks p on p.id = cp.task_id and p.name = 'fanout'
     where cp.name like 'spawn:%' and not exists (select 1 from expected e where e.parent = cp.task_id and e.name = cp.name)`,
    [n],
  );
  note('spawn checkpoints missing, written more than once, or not naming their child', badSpawns);

  // One join checkpoint per parent, written once, with the N results in spawn order.
  const badJoins = await rows(
    `with joins as (
       select p.id as parent, (p.params->>'seed')::int as seed, cp.name, cp.value::jsonb as value,
              (select count(*)::int from public.chaos_checkpoint_writes w where w.task_id = p.id and w.name = cp.name) as writes
       from durable.tasks p left join durable.checkpoints cp on cp.task_id = p.id and cp.name like 'joinAll:%'
       where p.name = 'fanout'
     )
     select parent, name, writes, jsonb_array_length(value->'results') as results from joins j
     where name is null or writes <> 1 or jsonb_array_length(value->'results') is distinct from $1::int
        or exists (select 1 from jsonb_array_elements(value->'results') with ordinality r(v, k)
                   where (r.v->>'sum')::bigint <> (j.seed::bigint * 100000 + r.k - 1) * 10 + 1)
        or (select count(*) from durable.checkpoints c2 where c2.task_id = j.parent and c2.name like 'joinAll:%') <> 1`,
    [n],
  );
  note('parents whose join checkpoint is missing, written more than once, or holds wrong results', badJoins);

  const suspensions = await rows(
    `select p.id, count(l.run_id)::int as n from durable.tasks p
       left join public.chaos_run_log l on l.task_id = p.id and l.new_state = 'sleeping'
     where p.name = 'fanout' group by p.id`,
  );
  const maxParentSuspensions = Math.max(0, ...suspensions.map((row) => row.n as number));
  note('parents suspended more than once (a fan-in must wake its parent once)', suspensions.filter((row) => row.n > 1));
  const parentAttempts = await count(pool, `select coalesce(sum(attempts), 0) as n from durable.tasks where name = 'fanout'`);

  return {
    figures: {
      lostParents: lost.length, wrongParentResults: wrong.length, lostChildren: lostChildren.length, secondChildren: secondChildren.length,
      badSpawnCheckpoints: badSpawns.length, badJoins: badJoins.length, maxParentSuspensions,
      parentSuspensions: suspensions.reduce((sum, row) => sum + (row.n as number), 0), parentAttempts,
    },
    violations,
  };
}
