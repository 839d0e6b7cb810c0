/**
 * Part 1, the crash storm: worker processes share one database and run thousands of `storm`
 * tasks while a killer SIGKILLs a random worker every few hundred milliseconds and starts a
 * replacement. Then every task, checkpoint, completion and effect is accounted for.
 *
 * What is proven, from the database and the test's own logs (chaos/database.ts):
 * - lost: every task is `completed`, with the result its params determine;
 * - checkpoints: each step of each task has exactly one checkpoint, with the step's value,
 *   written exactly once (the trigger log sees overwrites);
 * - double completion: one completed run per task, and one transition to `completed`;
 * - re-execution: an effect (task, step) recorded more than once is a re-execution. Exactly one
 *   recording belongs to the attempt whose checkpoint committed; every other one must come from
 *   an earlier attempt run by a process the killer killed, whose run then ended by lease expiry.
 *   A process runs at most `concurrency` steps at once, so a kill explains at most that many:
 *   re-executions <= kills x concurrency (= kills with concurrency 1).
 */
import pg from 'pg';
import { DurableClient } from '../lib/index.js';
import { killAllWorkers, type WorkerProcess } from '../devkit/processes.js';
import { eventually, sleep } from '../devkit/wait.js';
import { chaosPool, count, EXPECTED_STORM_RESULT_SQL, installChaosTables } from './database.js';
import { startChaosWorker } from './workers.js';

export interface StormOptions {
  /** A fresh database for this run (the storm creates its tables there). */
  databaseUrl: string;
  tasks: number;
  /** Steps per task: a random number in [min, max]. */
  minSteps: number;
  maxSteps: number;
  /** Worker processes running at once. */
  workers: number;
  kills: number;
  /** Pause before each kill. */
  killIntervalMs: number;
  /**
   * The killer picks among workers that have been up (claiming) this long, so that a kill hits a
   * worker at work rather than one still connecting (default killIntervalMs).
   */
  minUptimeMs?: number;
  /** Handlers at once per worker process. */
  concurrency: number;
  leaseMs: number;
  /** Time each step spends after recording its effect, before its checkpoint (default 10). */
  stepPauseMs?: number;
  /** After the last kill: how long the storm waits without any task finishing before it calls the rest lost (default 30 s + leaseMs). */
  stallMs?: number;
  /** Seed of the run's randomness (steps per task, which worker dies). */
  seed?: number;
  log?: (line: string) => void;
}

export interface StormReport {
  tasks: number;
  steps: number;
  kills: number;
  killedPids: number[];
  workersStarted: number;
  concurrency: number;
  /** kills x concurrency: the most re-executions the kills can explain. */
  bound: number;
  durationMs: number;
  /** Tasks completed when the last kill happened (the storm hit running work). */
  completedAtLastKill: number;
  /** Step executions beyond one per step (each one a re-run of a step whose checkpoint did not commit). */
  reExecutedSteps: number;
  /** Re-executions that no kill explains. */
  unexplained: number;
  lostTasks: number;
  doubleCompletions: number;
  wrongResults: number;
  /** Steps without exactly one checkpoint of the right value written once. */
  badCheckpoints: number;
  /** Runs that ended by lease expiry, and how many of them belonged to a killed process. */
  leaseExpiries: number;
  leaseExpiriesOfKilled: number;
  /** ESCAPED lines printed by worker processes (unhandled rejections, uncaught exceptions). */
  escaped: number;
  seed: number;
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

export async function runCrashStorm(options: StormOptions): Promise<StormReport> {
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? Date.now() % 1_000_000;
  const random = mulberry32(seed);
  const stepPauseMs = options.stepPauseMs ?? 10;
  const minUptimeMs = options.minUptimeMs ?? options.killIntervalMs;
  const settings = { databaseUrl: options.databaseUrl, concurrency: options.concurrency, leaseMs: options.leaseMs, pollIntervalMs: 100 };

  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 4 }); // applies the migrations
  const pool = chaosPool(options.databaseUrl);
  const all: WorkerProcess[] = [];
  const killed = new Set<number>();
  const replacements: Promise<unknown>[] = [];
  try {
    await installChaosTables(pool);
    const startWorker = async () => {
      const worker = await startChaosWorker(settings);
      all.push(worker);
      return worker;
    };
    await Promise.all(Array.from({ length: options.workers }, startWorker));
    log(`storm: ${options.workers} workers up; spawning ${options.tasks} tasks (seed ${seed})`);

    const started = Date.now();
    const spawns: Promise<unknown>[] = [];
    let steps = 0;
    for (let i = 0; i < options.tasks; i++) {
      const taskSteps = options.minSteps + Math.floor(random() * (options.maxSteps - options.minSteps + 1));
      steps += taskSteps;
      spawns.push(client.spawn('storm', { steps: taskSteps, seed: i, pauseMs: stepPauseMs }));
    }
    await Promise.all(spawns);

    // The killer starts once work is under way.
    await eventually(async () => (await count(pool, `select count(*) as n from public.chaos_effects`)) > 0, 60_000, 'the first step', 50);
    for (let k = 0; k < options.kills; k++) {
      await sleep(options.killIntervalMs);
      const victim = await eventually(() => pick(all.filter((worker) => worker.uptimeMs >= minUptimeMs), random), 90_000, 'a worker that is up', 50);
      killed.add(victim.pid);
      await victim.kill();
      replacements.push(startWorker());
    }
    const completedAtLastKill = await count(pool, `select count(*) as n from durable.tasks where state = 'completed'`);
    log(`storm: ${options.kills} kills done; ${completedAtLastKill}/${options.tasks} tasks completed at the last kill`);
    await Promise.all(replacements);

    const stallMs = options.stallMs ?? 30_000 + options.leaseMs;
    await waitForTerminal(pool, options.tasks, stallMs).catch((error: Error) => log(`storm: ${error.message}`));
    const durationMs = Date.now() - started;

    // The survivors shut down gracefully.
    const survivors = all.filter((worker) => worker.isAlive);
    const exits = await Promise.all(survivors.map((worker) => worker.terminate()));
    const violations: string[] = [];
    exits.forEach((exit, i) => {
      if (exit.code !== 0) violations.push(`worker ${survivors[i].pid} did not shut down cleanly on SIGTERM (${exit.signal ?? exit.code})`);
    });
    for (const worker of all) {
      if (!killed.has(worker.pid) && !survivors.includes(worker)) violations.push(`worker ${worker.pid} died without being killed:\n${worker.output()}`);
    }
    const escaped = all.reduce((sum, worker) => sum + worker.escaped, 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);

    const audit = await auditStorm(pool, stormRules(killed, options.concurrency));
    const expiries = audit.runs.filter((run) => run.error_name === 'LeaseExpired');
    const expiriesOfKilled = expiries.filter((run) => killed.has(Number(run.worker_id?.replace(/^chaos-/, ''))));
    violations.push(...audit.violations);
    return {
      tasks: options.tasks, steps, kills: killed.size, killedPids: [...killed], workersStarted: all.length, concurrency: options.concurrency,
      bound: killed.size * options.concurrency, durationMs, completedAtLastKill, seed, escaped,
      ...audit.figures, leaseExpiries: expiries.length, leaseExpiriesOfKilled: expiriesOfKilled.length, violations,
    };
  } finally {
    await killAllWorkers();
    await client.close();
    await pool.end();
  }
}

export interface EffectRow {
  task_id: string;
  step: number;
  attempt: number;
  pid: number;
  /** The database's clock when the effect was recorded. */
  recorded_at: Date;
}

export interface RunRow {
  task_id: string;
  attempt: number;
  state: string;
  worker_id: string | null;
  error_name: string | null;
}

export interface AuditRules {
  /**
   * Whether a recording of a step by an attempt before the one that committed its checkpoint is
   * explained. Called only when the run of that attempt belongs to the process that recorded it.
   */
  explains(effect: EffectRow, run: RunRow): boolean;
  /** The most re-executions one process can explain (its concurrency). */
  perProcess: number;
  /** The most re-executions in all. */
  bound: number;
  boundText: string;
}

export interface Audit {
  figures: Pick<StormReport, 'reExecutedSteps' | 'unexplained' | 'lostTasks' | 'doubleCompletions' | 'wrongResults' | 'badCheckpoints'>;
  runs: RunRow[];
  violations: string[];
}

/** The storm's rules: a step re-runs only because the process running it was killed (its attempt then ended by lease expiry). */
export function stormRules(killed: Set<number>, concurrency: number): AuditRules {
  return {
    explains: (effect, run) => killed.has(effect.pid) && run.state === 'failed' && run.error_name === 'LeaseExpired',
    perProcess: concurrency,
    bound: killed.size * concurrency,
    boundText: `${killed.size} kills x concurrency ${concurrency}`,
  };
}

/**
 * Accounts for every `storm` task, checkpoint, completion and effect in the database (see the
 * file's comment); a re-executed step must be explained by `rules`.
 */
export async function auditStorm(pool: pg.Pool, rules: AuditRules): Promise<Audit> {
  const violations: string[] = [];
  const note = (what: string, examples: unknown[]) => {
    if (examples.length > 0) violations.push(`${what}: ${examples.length} (e.g. ${JSON.stringify(examples.slice(0, 3))})`);
  };

  const { rows: unfinished } = await pool.query(
    `select id, state, attempts, error from durable.tasks where name = 'storm' and state <> 'completed'`,
  );
  note('tasks not completed (lost)', unfinished);
  const { rows: wrong } = await pool.query(
    `select t.id, t.result from durable.tasks t where t.name = 'storm' and t.state = 'completed'
       and t.result::jsonb is distinct from ${EXPECTED_STORM_RESULT_SQL}`,
  );
  note('completed with a wrong result', wrong);

  const { rows: doubles } = await pool.query(
    `select task_id from public.chaos_completions group by task_id having count(*) > 1
     union
     select task_id from durable.runs where state = 'completed' group by task_id having count(*) > 1`,
  );
  note('tasks completed more than once', doubles);
  const { rows: oddCompletions } = await pool.query(
    `select task_id, previous_state from public.chaos_completions where previous_state <> 'running'
     union all
     select id, 'no completion logged' from durable.tasks t
     where t.state = 'completed' and not exists (select 1 from public.chaos_completions c where c.task_id = t.id)`,
  );
  note('completions of a task that was not running, or not logged', oddCompletions);

  // Each step: exactly one checkpoint `step:s<i>`, of value seed * 10 + i, written once; no other checkpoint.
  const { rows: badCheckpoints } = await pool.query(
    `with expected as (
       select t.id as task_id, 'step:s' || g.i as name, to_jsonb((t.params->>'seed')::int * 10 + g.i) as value
       from durable.tasks t cross join lateral generate_series(1, (t.params->>'steps')::int) g(i) where t.name = 'storm'
     ), writes as (
       select task_id, name, count(*)::int as n from public.chaos_checkpoint_writes group by task_id, name
     )
     select e.task_id, e.name, c.value as stored, w.n as writes from expected e
       left join durable.checkpoints c on c.task_id = e.task_id and c.name = e.name
       left join writes w on w.task_id = e.task_id and w.name = e.name
     where c.task_id is null or c.value::jsonb <> e.value or w.n is distinct from 1
     union all
     select c.task_id, c.name, c.value, null from durable.checkpoints c join durable.tasks t on t.id = c.task_id and t.name = 'storm'
     where not exists (select 1 from expected e where e.task_id = c.task_id and e.name = c.name)`,
  );
  note('steps without exactly one right checkpoint written once', badCheckpoints);

  // Effects against checkpoints and runs.
  const { rows: effects } = await pool.query<EffectRow>(
    `select task_id, step, attempt, pid, recorded_at from public.chaos_effects`,
  );
  const { rows: checkpoints } = await pool.query<{ task_id: string; name: string; attempt: number }>(
    `select task_id, name, attempt from durable.checkpoints`,
  );
  const { rows: runs } = await pool.query<RunRow>(
    `select task_id, attempt, state, worker_id, error->>'name' as error_name from durable.runs`,
  );
  const checkpointAttempt = new Map(checkpoints.map((c) => [`${c.task_id}/${c.name}`, c.attempt]));
  const runOf = new Map(runs.map((run) => [`${run.task_id}/${run.attempt}`, run]));
  const byStep = new Map<string, typeof effects>();
  for (const effect of effects) {
    const key = `${effect.task_id}/step:s${effect.step}`;
    const list = byStep.get(key) ?? [];
    list.push(effect);
    byStep.set(key, list);
  }
  let reExecutedSteps = 0;
  const unexplained: unknown[] = [];
  const supersededByPid = new Map<number, number>();
  const notOnce: unknown[] = [];
  for (const [key, list] of byStep) {
    const committed = checkpointAttempt.get(key);
    // No checkpoint: the step's task did not complete, and is reported as lost.
    if (committed === undefined) continue;
    const kept = list.filter((effect) => effect.attempt === committed);
    if (kept.length !== 1) notOnce.push({ step: key, committedAttempt: committed, effects: list });
    reExecutedSteps += list.length - 1;
    for (const effect of list) {
      if (effect.attempt === committed) continue;
      const run = runOf.get(`${effect.task_id}/${effect.attempt}`);
      const explained = effect.attempt < committed && run !== undefined && run.worker_id === `chaos-${effect.pid}` && rules.explains(effect, run);
      if (!explained) unexplained.push({ step: key, effect, run: run ?? null });
      else supersededByPid.set(effect.pid, (supersededByPid.get(effect.pid) ?? 0) + 1);
    }
  }
  note('checkpointed steps whose committing attempt did not record exactly one effect', notOnce);
  note('re-executions nothing explains', unexplained);
  const overPerProcess = [...supersededByPid].filter(([, n]) => n > rules.perProcess).map(([pid, n]) => ({ pid, reExecutions: n }));
  note(`processes that explain more than ${rules.perProcess} re-execution(s)`, overPerProcess);
  if (reExecutedSteps > rules.bound) violations.push(`${reExecutedSteps} re-executed steps for ${rules.boundText}`);

  return {
    figures: {
      reExecutedSteps, unexplained: unexplained.length, lostTasks: unfinished.length, doubleCompletions: doubles.length,
      wrongResults: wrong.length, badCheckpoints: badCheckpoints.length,
    },
    runs,
    violations,
  };
}

/** Waits until `total` tasks are terminal, as long as some task finishes every `stallMs`. */
export async function waitForTerminal(pool: pg.Pool, total: number, stallMs: number): Promise<void> {
  let finished = -1;
  let progressAt = Date.now();
  for (;;) {
    const now = await count(pool, `select count(*) as n from durable.tasks where state in ('completed', 'failed', 'cancelled')`);
    if (now >= total) return;
    if (now > finished) {
      finished = now;
      progressAt = Date.now();
    } else if (Date.now() - progressAt > stallMs) {
      throw new Error(`${total - now} task(s) unfinished, none finished in the last ${stallMs} ms`);
    }
    await sleep(200);
  }
}

function pick<T>(items: T[], random: () => number): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(random() * items.length)];
}

/** A small seeded PRNG, so a run can be repeated. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
