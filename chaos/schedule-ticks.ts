/**
 * Part 10, schedule ticks over real time: worker processes on one database, each declaring the
 * same every-second schedule (`tick`, `* * * * * *`, chaos/worker.ts) at startup, run for
 * `durationMs` of wall-clock time; then they stop (SIGTERM, they drain) and the audit reads the
 * database: every tick second between the first and the last spawned task was spawned exactly
 * once (no duplicate, no gap), each task carries `headers['durable.scheduledFor']` equal to its
 * tick and the idempotency key `durable.schedule:tick:<tick>`, and every tick but the last two
 * (which may still be queued when the workers stop) completed with its tick as result.
 */
import type pg from 'pg';
import type { WorkerProcess } from '../devkit/processes.js';
import { eventually, sleep } from '../devkit/wait.js';
import { chaosPool } from './database.js';
import { startChaosWorker } from './workers.js';

export interface TicksOptions {
  databaseUrl: string;
  workers: number;
  /** Wall-clock time the workers run once all are up. */
  durationMs: number;
  log?: (line: string) => void;
}

export interface TicksAudit {
  /** Tick tasks in the database. */
  tasks: number;
  /** Distinct tick seconds. */
  ticks: number;
  first: string | undefined;
  last: string | undefined;
  /** Tick seconds spawned more than once. */
  duplicates: string[];
  /** Tick seconds missing between the first and the last. */
  gaps: string[];
  /** Tasks whose header is not a whole second, or whose idempotency key does not name their tick. */
  malformed: number;
  /** Ticks before the last two that did not complete with their tick as result. */
  unfinished: number;
  /** How long after its tick each task was spawned (created_at - tick), ms. */
  spawnLateP50Ms: number;
  spawnLateMaxMs: number;
  violations: string[];
}

export interface TicksReport extends TicksAudit {
  workers: number;
  durationMs: number;
  /** Ticks that fell inside the window in which all workers were up (a lower bound for `ticks`). */
  expectedAtLeast: number;
}

/** The audit, from the database alone (also run on forged evidence by the test). */
export async function auditTicks(pool: pg.Pool): Promise<TicksAudit> {
  const { rows } = await pool.query(`
    select headers->>'durable.scheduledFor' as at, idempotency_key, state, result,
           extract(epoch from created_at) * 1000 as created_ms
    from durable.tasks where name = 'tick' order by at`);
  const violations: string[] = [];
  const bySecond = new Map<number, typeof rows>();
  let malformed = 0;
  const late: number[] = [];
  for (const row of rows) {
    const ms = typeof row.at === 'string' ? Date.parse(row.at) : Number.NaN;
    if (!Number.isFinite(ms) || ms % 1000 !== 0 || new Date(ms).toISOString() !== row.at || row.idempotency_key !== `durable.schedule:tick:${row.at}`) {
      malformed += 1;
      continue;
    }
    bySecond.set(ms / 1000, [...(bySecond.get(ms / 1000) ?? []), row]);
    late.push(Number(row.created_ms) - ms);
  }
  const seconds = [...bySecond.keys()].sort((a, b) => a - b);
  const iso = (s: number) => new Date(s * 1000).toISOString();
  const duplicates = seconds.filter((s) => bySecond.get(s)!.length > 1).map(iso);
  const gaps: string[] = [];
  for (let s = seconds[0]; seconds.length > 0 && s <= seconds[seconds.length - 1]; s++) if (!bySecond.has(s)) gaps.push(iso(s));
  let unfinished = 0;
  for (const s of seconds.slice(0, -2)) {
    for (const row of bySecond.get(s)!) if (row.state !== 'completed' || row.result !== row.at) unfinished += 1;
  }
  if (malformed > 0) violations.push(`${malformed} tick task(s) without a whole-second durable.scheduledFor header or with an idempotency key that does not name it`);
  if (duplicates.length > 0) violations.push(`${duplicates.length} tick(s) spawned more than once: ${duplicates.slice(0, 5).join(', ')}`);
  if (gaps.length > 0) violations.push(`${gaps.length} tick(s) missing between the first and the last: ${gaps.slice(0, 5).join(', ')}`);
  if (unfinished > 0) violations.push(`${unfinished} tick task(s) (before the last two ticks) not completed with their tick as result`);
  late.sort((a, b) => a - b);
  return {
    tasks: rows.length, ticks: seconds.length, first: seconds.length ? iso(seconds[0]) : undefined,
    last: seconds.length ? iso(seconds[seconds.length - 1]) : undefined, duplicates, gaps, malformed, unfinished,
    spawnLateP50Ms: late.length ? late[Math.floor(late.length / 2)] : Number.NaN,
    spawnLateMaxMs: late.length ? late[late.length - 1] : Number.NaN, violations,
  };
}

export async function runScheduleTicks(options: TicksOptions): Promise<TicksReport> {
  const log = options.log ?? (() => undefined);
  const pool = chaosPool(options.databaseUrl);
  const workers: WorkerProcess[] = [];
  try {
    const settings = { databaseUrl: options.databaseUrl, concurrency: 4, leaseMs: 5000, pollIntervalMs: 200, ticks: true };
    workers.push(...(await Promise.all(Array.from({ length: options.workers }, () => startChaosWorker(settings)))));
    const allUp = Date.now();
    log(`${workers.length} workers up (pids ${workers.map((w) => w.pid).join(', ')}); ticking for ${options.durationMs / 1000} s`);
    await sleep(options.durationMs);
    const stopping = Date.now();
    for (const worker of workers) {
      if (!worker.isAlive) throw new Error(`worker ${worker.pid} died during the run:\n${worker.output()}`);
    }
    await Promise.all(workers.map((worker) => worker.terminate()));
    const escaped = workers.reduce((sum, worker) => sum + worker.escaped, 0);
    // The tasks spawned just before the stop may still be running in a draining worker: wait for the rows to settle.
    await eventually(async () => (await pool.query(`select count(*)::int as n from durable.tasks where name = 'tick' and state = 'running'`)).rows[0].n === 0, 10_000, 'no tick running', 100)
      .catch(() => undefined);
    const audit = await auditTicks(pool);
    // Whole seconds strictly inside [allUp, stopping): all workers were up for each of them.
    const expectedAtLeast = Math.max(0, Math.floor(stopping / 1000) - Math.ceil(allUp / 1000));
    const violations = [...audit.violations];
    if (audit.ticks < expectedAtLeast) violations.push(`${audit.ticks} ticks spawned, but ${expectedAtLeast} seconds turned while all workers ran`);
    if (escaped > 0) violations.push(`${escaped} unhandled error(s) escaped to a worker process`);
    return { ...audit, violations, workers: options.workers, durationMs: stopping - allUp, expectedAtLeast };
  } finally {
    await Promise.all(workers.map((worker) => worker.kill()));
    await pool.end();
  }
}

/** The report as chaos/run.ts prints it. */
export function formatTicks(report: TicksReport): string {
  return [
    `worker processes       ${report.workers}, every-second schedule declared by each at startup`,
    `ran for                ${(report.durationMs / 1000).toFixed(1)} s (${report.expectedAtLeast} whole seconds with all workers up)`,
    `tick tasks / ticks     ${report.tasks} / ${report.ticks} (${report.first} .. ${report.last})`,
    `duplicates / gaps      ${report.duplicates.length} / ${report.gaps.length}`,
    `malformed / unfinished ${report.malformed} / ${report.unfinished}`,
    `spawned after its tick p50 ${report.spawnLateP50Ms.toFixed(0)} ms, max ${report.spawnLateMaxMs.toFixed(0)} ms`,
  ].join('\n');
}
