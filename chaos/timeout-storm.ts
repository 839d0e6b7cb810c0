/**
 * Part 7, the statement-timeout storm (issue 13, item 2): worker processes and spawners with a
 * small `queryTimeoutMs` run `ledger` tasks while a saboteur, in bursts, holds the locks durable's
 * statements need (`durable.runs` in ACCESS EXCLUSIVE mode, `durable.tasks` or
 * `durable.checkpoints` in EXCLUSIVE mode, rows of running tasks FOR UPDATE) for longer than the
 * timeouts, or freezes one process's connections (a TCP proxy in front of each) past the
 * client's backstop. The spawners retry every failed spawn with the same idempotency key.
 *
 * What is proven, from the test's own records (chaos/ledger.ts) and durable.runs:
 * - nothing duplicated: one task per key, whatever the retries, and a key spawned again gives
 *   the same task; no task completed twice, no checkpoint replaced; a step runs again only after
 *   the execution that ran it failed (a database error or a lost lease: at most one step each)
 *   or was suspended with it in flight;
 * - nothing lost: every task stored ends completed, with its checkpoints' values;
 * - nothing stranded: a claim no handler executed (its answer lost) is put back, never left to
 *   expire, and once the storm is over no run stays `running` with an expired lease or held by
 *   a worker that is not executing it;
 * - the errors are the documented ones (DatabaseTimeoutError, OutcomeUnknownError,
 *   DatabaseUnavailableError), counted on each side.
 */
import { DurableClient } from '../lib/index.js';
import { killAllWorkers } from '../devkit/processes.js';
import { TcpProxy } from '../devkit/tcp-proxy.js';
import { sleep } from '../devkit/wait.js';
import { mulberry32, waitForTerminal } from './crash-storm.js';
import { chaosPool, count, installChaosTables } from './database.js';
import { auditLedger, installLedgerTables, type LedgerFigures } from './ledger.js';
import { Saboteur } from './saboteur.js';
import { startChaosWorker } from './workers.js';

export interface TimeoutStormOptions {
  /** A fresh database. */
  databaseUrl: string;
  /** How long the saboteur and the spawners go on (at least one burst of each kind). */
  durationMs: number;
  workers: number;
  concurrency: number;
  leaseMs: number;
  /** Every process's queryTimeoutMs (statement_timeout; lock_timeout is half). */
  queryTimeoutMs: number;
  /** Spawning loops in this process, on one client behind its own proxy. */
  callers: number;
  spawnPauseMs: number;
  /** How long a freeze lasts: a random time in [min, max) (default [1500, 2500]; beyond the backstop, well within the lease). */
  freezeMs?: [number, number];
  /** How long a lock is held (default [300, 1000]; beyond queryTimeoutMs). */
  lockMs?: [number, number];
  seed?: number;
  log?: (line: string) => void;
}

const ERRORS = ['DatabaseTimeoutError', 'OutcomeUnknownError', 'DatabaseUnavailableError'] as const;
type Counts = Record<(typeof ERRORS)[number] | 'lease-lost', number>;

export interface TimeoutStormReport extends LedgerFigures {
  durationMs: number;
  seed: number;
  /** Sabotage bursts by kind. */
  sabotage: Record<string, number>;
  /** Spawner side: keys, spawn calls, failures by error, and the checks of one task per key. */
  keys: number;
  spawnCalls: number;
  spawnErrors: Counts;
  respawned: number;
  /** Keys whose retry found the task stored: the failed call had committed, by its error. */
  spawnCommittedAfter: Record<string, number>;
  duplicateKeys: number;
  /** Worker side: log lines by error, claims that failed, outcomes not recorded, runs put back. */
  workerLines: Counts & { claimFailed: number; notRecorded: number; putBack: number };
  /** Handler side: executions that ended with each error (thrown by a ctx call). */
  handlerErrors: Counts;
  /** After the storm and a lease of settling: runs `running` expired or held by a worker not executing them. */
  strandedAfter: number;
  escaped: number;
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
const zero = (): Counts => ({ DatabaseTimeoutError: 0, OutcomeUnknownError: 0, DatabaseUnavailableError: 0, 'lease-lost': 0 });
const LINE_ERRORS: [keyof Counts, RegExp][] = [
  ['DatabaseTimeoutError', /PostgreSQL cancelled the statement/], ['OutcomeUnknownError', /did not answer the statement in time/],
  ['DatabaseUnavailableError', /unreachable or refused the connection/],
];

export async function runTimeoutStorm(options: TimeoutStormOptions): Promise<TimeoutStormReport> {
  const log = options.log ?? (() => undefined);
  const seed = options.seed ?? Date.now() % 1_000_000;
  const random = mulberry32(seed);
  const between = (min: number, max: number) => min + Math.floor(random() * (max - min));
  const violations: string[] = [];
  await (await DurableClient.connect({ databaseUrl: options.databaseUrl, logger: quiet, poolSize: 2 })).close(); // the migrations
  const pool = chaosPool(options.databaseUrl);
  const target = new URL(options.databaseUrl);
  const proxies: TcpProxy[] = [];
  const proxied = async () => {
    const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
    proxies.push(proxy);
    return { proxy, url: await proxy.listen(options.databaseUrl) };
  };
  let saboteur: Saboteur | undefined;
  let spawner: DurableClient | undefined;
  const workerLines = { ...zero(), claimFailed: 0, notRecorded: 0, putBack: 0 };
  const onLine = (line: string) => {
    for (const [name, pattern] of LINE_ERRORS) if (pattern.test(line)) workerLines[name] += 1;
    if (/claiming failed/.test(line)) workerLines.claimFailed += 1;
    if (/could not record the outcome/.test(line)) workerLines.notRecorded += 1;
    workerLines.putBack += Number(/put back (\d+) run\(s\) claimed by a claim whose answer was lost/.exec(line)?.[1] ?? 0);
  };
  try {
    await installChaosTables(pool);
    await installLedgerTables(pool);
    const settings = { databaseUrl: options.databaseUrl, concurrency: options.concurrency, leaseMs: options.leaseMs, pollIntervalMs: 100, queryTimeoutMs: options.queryTimeoutMs, onLine };
    const fleet = await Promise.all(Array.from({ length: options.workers }, async () => {
      const { proxy, url } = await proxied();
      return { proxy, worker: await startChaosWorker({ ...settings, durableUrl: url }) };
    }));
    const spawnerLink = await proxied();
    spawner = await DurableClient.connect({ databaseUrl: spawnerLink.url, queryTimeoutMs: options.queryTimeoutMs, logger: quiet, poolSize: 4 });
    log(`timeout storm: ${options.workers} workers and ${options.callers} spawners up, queryTimeoutMs ${options.queryTimeoutMs} (seed ${seed})`);

    const started = Date.now();
    const sabotage = (saboteur = new Saboteur({
      databaseUrl: options.databaseUrl, workers: fleet.map(({ proxy }) => proxy), spawner: spawnerLink.proxy,
      lockMs: options.lockMs ?? [300, 1000], freezeMs: options.freezeMs ?? [1500, 2500], between,
    }));
    await sabotage.connect();
    let stormOver = false;
    const saboteurLoop = async () => {
      await sabotage.run(started + options.durationMs);
      stormOver = true;
    };

    // Spawners: every failure is retried with the same key; every 10th key is spawned again.
    const keys = new Map<string, Set<string>>();
    const spawnErrors = zero();
    const spawnCommittedAfter: Record<string, number> = {};
    const odd: string[] = [];
    let spawnCalls = 0, respawned = 0, sequence = 0;
    const spawnKey = async (key: string, params: unknown, again = false) => {
      const failedWith: string[] = [];
      for (let tries = 1; tries <= 200; tries++) {
        spawnCalls += 1;
        try {
          const result = await spawner!.spawn('ledger', params, { idempotencyKey: key, maxAttempts: 1000, retry: { kind: 'fixed', delayMs: 50 } });
          keys.set(key, (keys.get(key) ?? new Set()).add(result.taskId));
          // Found stored by a retry of its first spawn: a failed call had committed (an unanswered
          // one, if any: the calls after it may have failed otherwise).
          if (!again && !result.created) {
            const by = failedWith.includes('OutcomeUnknownError') ? 'OutcomeUnknownError' : failedWith.at(-1) ?? 'no error';
            spawnCommittedAfter[by] = (spawnCommittedAfter[by] ?? 0) + 1;
          }
          if (again && result.created) odd.push(`key ${key} spawned again created a task`);
          return;
        } catch (error) {
          const { name, message } = error as Error;
          failedWith.push(name);
          if (name in spawnErrors) spawnErrors[name as keyof Counts] += 1;
          else odd.push(`${name}: ${message}`);
          await sleep(Math.min(25 * tries, 500));
        }
      }
      odd.push(`gave up on key ${key}`);
    };
    const caller = async (c: number) => {
      for (let n = 0; !stormOver; n++) {
        const s = sequence++;
        const params = { seed: s, rounds: 2 + (s % 3), pauseMs: 2, sleepMs: 5 };
        await spawnKey(`k${c}-${n}`, params);
        if (n % 10 === 9) {
          respawned += 1;
          await spawnKey(`k${c}-${n}`, params, true);
        }
        await sleep(options.spawnPauseMs);
      }
    };
    await Promise.all([saboteurLoop(), ...Array.from({ length: options.callers }, (_, c) => caller(c))]);
    for (const proxy of proxies) proxy.restore();
    const total = await count(pool, `select count(*) as n from durable.tasks where name = 'ledger'`);
    log(`timeout storm: storm over after ${Date.now() - started} ms, ${total} tasks; settling`);

    // Nothing stranded: a lease after the storm, no run is running expired or unexecuted (twice, 1 s apart).
    await sleep(options.leaseMs + 1000);
    const stranded = async () => {
      const executing = new Set((await Promise.all(fleet.map(({ worker }) => worker.request<{ runs: string[] }>({ type: 'stats' })))).flatMap((s) => s.runs));
      const { rows } = await pool.query<{ id: string; worker_id: string; epoch: string | null; expired: boolean }>(
        `select id, worker_id, to_jsonb(r)->>'claim_epoch' as epoch, lease_expires_at <= durable.now() as expired from durable.runs r where state = 'running'`);
      const later = new Set((await Promise.all(fleet.map(({ worker }) => worker.request<{ runs: string[] }>({ type: 'stats' })))).flatMap((s) => s.runs));
      return rows.filter((r) => r.expired || (!executing.has(r.id) && !later.has(r.id))).map((r) => `${r.id}@${r.epoch} (${r.worker_id}${r.expired ? ', expired' : ''})`);
    };
    const first = await stranded();
    await sleep(1000);
    const second = new Set(await stranded());
    const strandedAfter = first.filter((run) => second.has(run));
    if (strandedAfter.length > 0) violations.push(`runs stranded after the storm: ${strandedAfter.length} (e.g. ${strandedAfter.slice(0, 3).join(', ')})`);

    await waitForTerminal(pool, total, 30_000 + options.leaseMs).catch((error: Error) => log(`timeout storm: ${error.message}`));
    const durationMs = Date.now() - started;

    // One task per key; every task stored is one the spawners asked for.
    const { rows: byKey } = await pool.query<{ key: string; ids: string[] }>(
      `select idempotency_key as key, array_agg(id::text) as ids from durable.tasks where name = 'ledger' group by 1`);
    const stored = new Map(byKey.map((row) => [row.key, row.ids]));
    const duplicates = [...keys].filter(([key, ids]) => ids.size !== 1 || stored.get(key)?.length !== 1 || !ids.has(stored.get(key)![0]));
    const duplicateKeys = duplicates.length + byKey.filter((row) => row.ids.length > 1).length;
    if (duplicateKeys > 0) violations.push(`keys with more than one task: ${duplicateKeys} (e.g. ${JSON.stringify(duplicates.slice(0, 3).map(([k, ids]) => [k, [...ids], stored.get(k)]))})`);
    const strays = byKey.filter((row) => !keys.has(row.key));
    if (strays.length > 0) violations.push(`tasks whose spawn never returned them: ${strays.length} (spawns given up on: ${odd.filter((o) => o.startsWith('gave up')).length})`);
    if (odd.length > 0) violations.push(`spawns that failed otherwise than documented: ${odd.length} (e.g. ${odd.slice(0, 3).join('; ')})`);
    // Only a statement left unanswered may have committed: here every freeze outlasts the backstop,
    // so a connection cut at its end carried nothing the server had received.
    const wronglyFailed = Object.entries(spawnCommittedAfter).filter(([name]) => name !== 'OutcomeUnknownError');
    if (wronglyFailed.length > 0) violations.push(`spawns that failed otherwise than OutcomeUnknownError and had committed: ${JSON.stringify(Object.fromEntries(wronglyFailed))}`);

    const escaped = fleet.reduce((sum, { worker }) => sum + worker.escaped, 0);
    if (escaped > 0) violations.push(`${escaped} unhandled rejection(s) or uncaught exception(s) in worker processes`);
    const exits = await Promise.all(fleet.map(({ worker }) => worker.terminate()));
    exits.forEach((exit, i) => {
      if (exit.code !== 0) violations.push(`worker ${fleet[i].worker.pid} did not shut down cleanly on SIGTERM (${exit.signal ?? exit.code})`);
    });

    const audit = await auditLedger(pool, {
      killed: new Set(), concurrency: options.concurrency, failures: true, mayHaveCommitted: ['OutcomeUnknownError'],
      // A lease expires only for a claim some handler executed (its outcome could not be recorded);
      // a claim no handler executed (its answer lost) must be put back.
      expiry: (claim) => claim.executions.length > 0,
      unexecuted: (claim) => claim.end?.new_state === 'pending',
    });
    violations.push(...audit.violations);
    const handlerErrors = zero();
    const { rows: endings } = await pool.query<{ ending: string }>(`select ending from public.chaos_executions where ending <> 'returned'`);
    for (const { ending } of endings) {
      const name = ERRORS.find((e) => ending.startsWith(`${e}:`)) ?? (ending.includes('(lease-lost)') ? 'lease-lost' : undefined);
      if (name) handlerErrors[name] += 1;
    }
    const unexpected = endings.filter(({ ending }) => !ERRORS.some((e) => ending.startsWith(`${e}:`)) && !/\((lease-lost|suspended)\)/.test(ending));
    if (unexpected.length > 0) violations.push(`executions that ended with an unexpected error: ${unexpected.length} (e.g. ${JSON.stringify(unexpected.slice(0, 3))})`);
    return {
      ...audit.figures, durationMs, seed, sabotage: sabotage.bursts, keys: keys.size, spawnCalls, spawnErrors, respawned, spawnCommittedAfter, duplicateKeys, workerLines, handlerErrors,
      strandedAfter: strandedAfter.length, escaped, violations,
    };
  } finally {
    await killAllWorkers();
    for (const proxy of proxies) await proxy.close().catch(() => undefined);
    await spawner?.close().catch(() => undefined);
    await saboteur?.end();
    await pool.end();
  }
}
