/**
 * `npm run bench`: nestjs-durable against the systems users would pick instead, in one run, on
 * one PostgreSQL server (a fresh database per measurement). See bench/README.md.
 *
 * Env: BENCH_N (tasks per drain, default 50000), BENCH_RUNS (runs per row, default 3),
 * BENCH_SYSTEMS (comma list, default all), BENCH_DATABASE_URL (admin URL of the server),
 * BENCH_SCENARIOS (comma list of scenarios, e.g. drain-1,pickup,scale; default all),
 * BENCH_SCALE (worker processes of the scale test, default 1,2), BENCH_FANOUT_CHILDREN (children per
 * fan-out of the fanout rows, default 1000), BENCH_TUNE_N (tasks per run of
 * the tuning pass, default 5000), BENCH_OUT (JSON path).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createDatabase, dropDatabase } from '../devkit/databases.js';
import { TcpProxy } from '../devkit/tcp-proxy.js';
import { redactUrl } from '../devkit/redact.js';
import type { CellResult, CellSpec, ChildMessage } from './cell.js';
import {
  checkpoint, dbMeters, pgCpuSeconds, processCpuSeconds, serverInfo, startServer, waitNoBackends, walBytesBetween,
  type DbMeters, type PgServer, type ServerInfo,
} from './support/postgres.js';
import { REDIS_DURABILITY, redisBinary, startRedis, type RedisServer } from './support/redis.js';
import { fmt, fmtSig, median, percentile, spread, type Spread } from './support/stats.js';
import { SYSTEMS } from './systems/index.js';
import { FANOUT_CHILDREN, now, rowKey, type RowSpec, type Scenario, type Settings, type SystemAdapter } from './systems/types.js';
import type { WorkerMessage } from './worker-process.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
/** BENCH_QUICK=1: a smoke run (few tasks, one run, no tuning pass, short idle windows): figures mean nothing. */
const QUICK = process.env.BENCH_QUICK === '1';
const N = positive('BENCH_N', QUICK ? 2000 : 50_000);
const RUNS = positive('BENCH_RUNS', QUICK ? 1 : 3);
/** Tasks per run of the tuning pass. */
const TUNE_N = positive('BENCH_TUNE_N', QUICK ? 1000 : 5000);
const SCALE = (process.env.BENCH_SCALE ?? '1,2').split(',').map(Number).filter((k) => k > 0);
/** Systems run when BENCH_SYSTEMS is not set (dbos and limit-1by1 only when named). */
const DEFAULT_SYSTEMS = ['durable', 'limit', 'pg-boss', 'graphile-worker', 'absurd', 'bullmq'];
const LATENCY: Scenario[] = ['pickup', 'emit', 'sleep', 'idle', 'fanout'];
const STEPS: Partial<Record<Scenario, number>> = { 'drain-0': 0, 'drain-1': 1, 'drain-3': 3, 'spawn-seq': 0, 'spawn-batch': 0, million: 1, snapshot: 1 };
const SCENARIO_TITLE: Record<string, string> = {
  'drain-0': 'drain, no-op',
  'drain-1': 'drain, 1 step',
  'drain-3': 'drain, 3 steps',
  'spawn-seq': 'spawn, one by one',
  'spawn-batch': 'spawn, 200 callers',
  pickup: 'enqueue -> start',
  emit: 'emit -> resume',
  sleep: 'sleep 100ms lateness',
  idle: 'idle',
  fanout: `fan-out ${FANOUT_CHILDREN} -> fan-in wake`,
  'drain-0-fetch': 'drain, no-op',
  million: 'drain, 1 step, 1M completed kept',
  snapshot: 'drain, 1 step, snapshot held',
  distance: 'drain, 1 step',
  flow: 'drain, no-op, flow control',
};

function positive(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
  return value;
}

const log = (line: string) => console.log(line);

/** One measured run of a row. */
interface RunResult {
  ok: boolean;
  error?: string;
  n: number;
  seconds: number;
  tasksPerSec: number;
  p50?: number;
  p99?: number;
  nodeCpuSeconds: number;
  serverCpuSeconds: number;
  commits?: number;
  walBytes?: number;
  peakRssBytes: number;
  processes: number;
  /** Statements per second (idle check). */
  value?: number;
  /** Named figures of the cell and, for idle rows, of the server meters over the window. */
  extra?: Record<string, number>;
  /** Commits of the server's other databases during the run (> 0: WAL is not ours alone). */
  otherCommits?: number;
  /** The machine's 1-minute load average when the run ended (other work on the machine). */
  load1?: number;
  /** `fanout`: each repetition's wake-up (last child's end to the parent's resumption) and whole fan-out, ms. */
  samples?: number[];
  totals?: number[];
}

interface Row {
  system: SystemAdapter;
  spec: RowSpec;
  /** The scale test: this many worker processes (ours only). */
  processes?: number;
  settings?: Settings;
  tuning: { settings: Settings; tasksPerSec: number; error?: string }[];
  runs: RunResult[];
  notRun?: string;
}

// --------------------------------------------------------------------------------------------
// Child processes

/** Child processes alive now, killed if the benchmark is interrupted. */
const liveChildren = new Set<ChildProcess>();

function forkTs(script: string, env: Record<string, string>): ChildProcess {
  const child = fork(join(HERE, script), [], {
    execArgv: ['--import', import.meta.resolve('tsx'), '--disable-warning=ExperimentalWarning', ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: ROOT,
  });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  return child;
}

/** Messages of a child, awaited by type; an 'error' message or an exit rejects. */
class Mailbox<M extends { type: string }> {
  private readonly queue: M[] = [];
  private readonly waiters = new Set<() => void>();
  private failure: Error | undefined;
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess, readonly what: string) {
    child.on('message', (message: M) => {
      if (message.type === 'error') this.failure = new Error(`${what}: ${(message as unknown as { message: string }).message}`);
      else this.queue.push(message);
      this.wake();
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      this.failure ??= new Error(`${what} exited (${signal ?? code}) before it finished`);
      this.wake();
      resolve();
    }));
  }

  async next<T extends M['type']>(type: T, timeoutMs: number): Promise<Extract<M, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.queue.findIndex((message) => message.type === type);
      if (index >= 0) return this.queue.splice(index, 1)[0] as Extract<M, { type: T }>;
      if (this.failure) throw this.failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.what}: no '${type}' within ${Math.round(timeoutMs / 1000)} s`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  private wake(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Every queued message of a type, removed from the queue. */
  drain<T extends M['type']>(type: T): Extract<M, { type: T }>[] {
    const taken = this.queue.filter((message) => message.type === type);
    for (const message of taken) this.queue.splice(this.queue.indexOf(message), 1);
    return taken as Extract<M, { type: T }>[];
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

// --------------------------------------------------------------------------------------------
// One cell: a fresh database, a child process, the meters around its measured window

let databaseSeq = 0;

async function measureCell(ctx: Context, system: SystemAdapter, scenario: Scenario, n: number, settings: Settings): Promise<RunResult> {
  const database = `bench_${process.pid}_${databaseSeq++}`;
  const { url: databaseUrl } = await createDatabase(ctx.server.adminUrl, { name: database, replace: true, client: ctx.server.admin });
  const spec: CellSpec = { system: system.id, scenario, databaseUrl, redisUrl: ctx.redis?.url, n, settings };
  // The distance rows: the worker reaches the database through a proxy delaying each direction.
  const rttMs = Number(settings.rttMs ?? 0);
  let proxy: TcpProxy | undefined;
  if (rttMs > 0) {
    const target = new URL(databaseUrl);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }, { delay: rttMs / 2 });
    spec.runDatabaseUrl = await proxy.listen(databaseUrl);
  }
  const measuredRttMs = proxy ? (await roundTripMs(spec.runDatabaseUrl!)) - (await roundTripMs(databaseUrl)) : undefined;
  const child = new Mailbox<ChildMessage>(forkTs('cell.ts', { BENCH_CELL: JSON.stringify(spec) }), `${system.id} ${scenario}`);
  // Drains: 100 tasks/s at least; latency cells: a second per sample at most.
  const runTimeoutMs = 60_000 + (scenario === 'idle' ? 600_000 : scenario === 'fanout' ? n * 600_000 : LATENCY.includes(scenario) ? n * 1000 : (n / 100) * 1000);
  try {
    await child.next('ready', scenario === 'million' ? 1_800_000 : 300_000);
    // After prepare(): its writes are flushed, so no checkpoint falls into the window.
    await checkpoint(ctx.server);
    const clean = await waitNoBackends(ctx.server, database, 10_000).then(() => true, () => false);
    const before = await dbMeters(ctx.server, database);
    const aofBefore = ctx.redis && system.needsRedis ? await ctx.redis.aofBytes() : undefined;
    // Postgres' CPU, or redis-server's for a system on Redis.
    const serverCpu = () => (system.needsRedis && ctx.redis ? processCpuSeconds(ctx.redis.pid) : pgCpuSeconds(ctx.server));
    let cpuAtStart = serverCpu();
    child.child.send({ type: 'go' });
    // Idle rows: the server meters over the idle window only (from the cell's 'started').
    let windowStart: { meters: DbMeters; at: number } | undefined;
    const started = child.next('started', runTimeoutMs).then(async () => {
      cpuAtStart = serverCpu();
      if (scenario === 'idle') windowStart = { meters: await dbMeters(ctx.server, database), at: now() };
    }, () => undefined);
    const { result } = await child.next('done', runTimeoutMs);
    const cpuAtEnd = serverCpu();
    if (measuredRttMs !== undefined) result.extra = { ...result.extra, addedRttMs: measuredRttMs };
    if (scenario === 'idle') {
      await started;
      const end = await dbMeters(ctx.server, database);
      const seconds = (now() - windowStart!.at) / 1000;
      result.extra = {
        ...result.extra,
        serverXactsPerSec: (end.xactCommit + end.xactRollback - windowStart!.meters.xactCommit - windowStart!.meters.xactRollback) / seconds,
        walBytesPerSec: (await walBytesBetween(ctx.server, windowStart!.meters.walLsn, end.walLsn)) / seconds,
        otherCommits: end.otherCommits - windowStart!.meters.otherCommits,
        windowSeconds: seconds,
      };
    }
    await Promise.race([started, Promise.resolve()]);
    child.child.send({ type: 'stop' });
    await child.next('closed', 60_000);
    await child.exited;
    const closed = await waitNoBackends(ctx.server, database, 10_000).then(() => true, () => false);
    const after = await dbMeters(ctx.server, database);
    const aofAfter = aofBefore !== undefined ? await ctx.redis!.aofBytes() : undefined;
    if (!clean || !closed) log(`    (connections to ${database} were still open around the window: commit counts are approximate)`);
    return toRunResult(result, cpuAtEnd - cpuAtStart, system.needsRedis
      ? { walBytes: aofBefore !== undefined ? aofAfter! - aofBefore : undefined }
      : {
        commits: after.xactCommit - before.xactCommit,
        walBytes: await walBytesBetween(ctx.server, before.walLsn, after.walLsn),
        otherCommits: after.otherCommits - before.otherCommits,
      });
  } finally {
    await child.kill();
    await proxy?.close().catch(() => undefined);
    await dropDatabase(ctx.server.adminUrl, database, ctx.server.admin).catch(() => undefined);
  }
}

/** Median time of `select 1` on one connection: what the proxy adds is the RTT the row measures with. */
async function roundTripMs(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const times: number[] = [];
    for (let i = 0; i < 100; i += 1) {
      const t0 = now();
      await client.query('select 1');
      times.push(now() - t0);
    }
    return median(times);
  } finally {
    await client.end();
  }
}

function toRunResult(result: CellResult, serverCpuSeconds: number, costs: { commits?: number; walBytes?: number; otherCommits?: number }): RunResult {
  const seconds = ((result.endedAt ?? 0) - (result.startedAt ?? 0)) / 1000;
  const samples = result.samples;
  return {
    ok: true,
    n: result.count,
    seconds,
    tasksPerSec: samples ? Number.NaN : result.count / seconds,
    p50: samples ? percentile(samples, 50) : undefined,
    p99: samples ? percentile(samples, 99) : undefined,
    value: samples && samples.length === 1 ? samples[0] : undefined,
    nodeCpuSeconds: result.nodeCpuSeconds,
    serverCpuSeconds,
    commits: costs.commits,
    walBytes: costs.walBytes,
    peakRssBytes: result.peakRssBytes,
    processes: 1,
    extra: result.extra,
    otherCommits: costs.otherCommits,
    ...(result.totals ? { samples, totals: result.totals } : {}),
  };
}

// --------------------------------------------------------------------------------------------
// The scale test: k worker processes of ours on one set of tasks, started at one moment

async function measureScale(ctx: Context, k: number, n: number, settings: Settings): Promise<RunResult> {
  const database = `bench_${process.pid}_${databaseSeq++}`;
  const { url: databaseUrl } = await createDatabase(ctx.server.adminUrl, { name: database, replace: true, client: ctx.server.admin });
  await checkpoint(ctx.server);
  const children: Mailbox<WorkerMessage>[] = [];
  const fork = (what: string, spec: object) => {
    const child = new Mailbox<WorkerMessage>(forkTs('worker-process.ts', { BENCH_WORKER: JSON.stringify(spec) }), what);
    children.push(child);
    return child;
  };
  try {
    // The prefill in a child too: every process of a cell runs the library as it is on disk now.
    const prefill = fork('prefill process', { role: 'prefill', databaseUrl, n, steps: 1 });
    await prefill.next('prefilled', 300_000);
    await prefill.exited;
    await waitNoBackends(ctx.server, database, 10_000).catch(() => undefined);
    const before = await dbMeters(ctx.server, database);
    // The same total concurrency whatever k: each process gets its share.
    const workers = Array.from({ length: k }, (_, i) => fork(`worker process ${i}`, {
      role: 'worker', databaseUrl, concurrency: Math.max(1, Math.round(Number(settings.concurrency ?? 10) / k)),
      poolSize: settings.poolSize === undefined ? undefined : Number(settings.poolSize), workerId: `bench-${i}`,
    }));
    await Promise.all(workers.map((worker) => worker.next('ready', 120_000)));
    for (const worker of workers) worker.child.send({ type: 'go' });
    const progress = new Map<number, { count: number; firstStart?: number; lastEnd?: number }>();
    let cpuAtStart = Number.NaN;
    const deadline = Date.now() + 60_000 + (n / 100) * 1000;
    for (;;) {
      workers.forEach((worker, i) => {
        for (const message of worker.drain('progress')) progress.set(i, message);
      });
      const values = [...progress.values()];
      if (Number.isNaN(cpuAtStart) && values.some((value) => value.firstStart !== undefined)) cpuAtStart = pgCpuSeconds(ctx.server);
      if (values.reduce((sum, value) => sum + value.count, 0) >= n) break;
      if (Date.now() > deadline) throw new Error(`${k} worker processes did not finish ${n} tasks in time`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await allDurableTasksCompleted(databaseUrl, n);
    const lastEnd = now();
    const cpuAtEnd = pgCpuSeconds(ctx.server);
    const values = [...progress.values()];
    const starts = values.map((value) => value.firstStart ?? Infinity);
    const firstStart = Math.min(...starts);
    for (const worker of workers) worker.child.send({ type: 'stop' });
    const stopped = await Promise.all(workers.map((worker) => worker.next('stopped', 60_000)));
    await Promise.all(workers.map((worker) => worker.exited));
    await waitNoBackends(ctx.server, database, 10_000).catch(() => undefined);
    const after = await dbMeters(ctx.server, database);
    const seconds = (lastEnd - firstStart) / 1000;
    log(`    (${k} process${k > 1 ? 'es' : ''} at concurrency ${Math.max(1, Math.round(Number(settings.concurrency ?? 10) / k))} each: ${values.map((value) => value.count).join(' + ')} tasks; ` +
      `first handler starts ${fmtSig(Math.max(...starts) - firstStart)} ms apart)`);
    return {
      ok: true,
      n,
      seconds,
      tasksPerSec: n / seconds,
      nodeCpuSeconds: stopped.reduce((sum, message) => sum + message.nodeCpuSeconds, 0),
      serverCpuSeconds: cpuAtEnd - cpuAtStart,
      commits: after.xactCommit - before.xactCommit,
      walBytes: await walBytesBetween(ctx.server, before.walLsn, after.walLsn),
      otherCommits: after.otherCommits - before.otherCommits,
      peakRssBytes: Math.max(...stopped.map((message) => message.peakRssBytes)),
      processes: k,
    };
  } finally {
    await Promise.all(children.map((child) => child.kill()));
    await dropDatabase(ctx.server.adminUrl, database, ctx.server.admin).catch(() => undefined);
  }
}

/** Waits until n of durable's tasks are completed as stored (after the last handler returned). */
async function allDurableTasksCompleted(databaseUrl: string, n: number): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (;;) {
      const { rows } = await client.query(`select count(*)::int as n from durable.tasks where state = 'completed'`);
      if (rows[0].n >= n) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    await client.end();
  }
}

// --------------------------------------------------------------------------------------------
// Plan, runs, aggregation

interface Context {
  server: PgServer;
  redis?: RedisServer;
}

function nFor(row: Row): number {
  if (row.spec.scenario === 'idle') return 1;
  if (LATENCY.includes(row.spec.scenario)) return QUICK ? Math.min(row.spec.maxN ?? 200, row.spec.scenario === 'fanout' ? 1 : 30) : row.spec.maxN ?? 200;
  return Math.min(N, row.spec.maxN ?? N);
}

function label(row: Row): string {
  const variant = row.spec.variant ? ` (${row.spec.variant})` : '';
  const processes = row.processes ? `, ${row.processes} process${row.processes > 1 ? 'es' : ''}` : '';
  return `${SCENARIO_TITLE[row.spec.scenario] ?? row.spec.scenario}${variant}${processes}`;
}

async function measure(ctx: Context, row: Row, settings: Settings, n = nFor(row)): Promise<RunResult> {
  try {
    const result = row.processes
      ? await measureScale(ctx, row.processes, n, settings)
      : await measureCell(ctx, row.system, row.spec.scenario, n, settings);
    return { ...result, load1: loadavg()[0] };
  } catch (error) {
    const message = (error as Error).message.split('\n')[0].slice(0, 160);
    return { ok: false, error: message, n, seconds: Number.NaN, tasksPerSec: Number.NaN, nodeCpuSeconds: Number.NaN, serverCpuSeconds: Number.NaN, peakRssBytes: Number.NaN, processes: row.processes ?? 1 };
  }
}

function describeRun(result: RunResult): string {
  if (!result.ok) return `FAILED: ${result.error}`;
  if (result.extra && result.extra.serverXactsPerSec !== undefined) {
    return `${fmtSig(result.extra.clientStatementsPerSecPerProcess)} statements/s per process (client count), ` +
      `${fmtSig(result.extra.serverXactsPerSec)} transactions/s and ${fmt(result.extra.walBytesPerSec)} WAL B/s on the server`;
  }
  if (result.value !== undefined) return `${fmtSig(result.value)}/s`;
  if (result.totals) return `wake p50 ${fmtSig(result.p50)} ms, p99 ${fmtSig(result.p99)} ms; total p50 ${fmtSig(percentile(result.totals, 50))} ms`;
  if (result.p50 !== undefined) return `p50 ${fmtSig(result.p50)} ms, p99 ${fmtSig(result.p99)} ms`;
  const cpu = ((result.nodeCpuSeconds + result.serverCpuSeconds) / result.n) * 1000;
  return `${fmt(result.tasksPerSec)} tasks/s (${fmtSig(result.seconds)} s, cpu ${fmtSig(cpu)} s/1k` +
    `${result.commits !== undefined ? `, ${fmtSig(result.commits / result.n)} commits/task` : ''})`;
}

interface Aggregate {
  tasksPerSec?: Spread;
  stepsPerSec?: number;
  p50?: Spread;
  p99?: number;
  value?: number;
  cpuPer1k?: number;
  nodeCpuPer1k?: number;
  serverCpuPer1k?: number;
  commitsPerTask?: number;
  walBytesPerTask?: number;
  peakRssMb?: number;
  /** Median of each named figure of the runs. */
  extra: Record<string, number>;
  /** The most commits other databases made during one run (> 0: WAL figures include theirs). */
  otherCommits?: number;
  failures: string[];
}

function aggregate(row: Row): Aggregate {
  const ok = row.runs.filter((run) => run.ok);
  const failures = row.runs.filter((run) => !run.ok).map((run) => run.error ?? 'failed');
  if (ok.length === 0) return { failures, extra: {} };
  const extra: Record<string, number> = {};
  for (const key of new Set(ok.flatMap((run) => Object.keys(run.extra ?? {})))) extra[key] = median(ok.map((run) => run.extra?.[key] ?? Number.NaN));
  const others = ok.map((run) => run.otherCommits).filter((value): value is number => value !== undefined);
  const steps = STEPS[row.spec.scenario];
  const perTask = (pick: (run: RunResult) => number | undefined) =>
    median(ok.map((run) => { const v = pick(run); return v === undefined ? Number.NaN : v / run.n; }));
  const isLatency = LATENCY.includes(row.spec.scenario);
  const tasks = isLatency ? undefined : spread(ok.map((run) => run.tasksPerSec));
  return {
    tasksPerSec: tasks,
    stepsPerSec: tasks && steps ? tasks.median * steps : undefined,
    p50: isLatency && row.spec.scenario !== 'idle' ? spread(ok.map((run) => run.p50 ?? Number.NaN)) : undefined,
    p99: isLatency && row.spec.scenario !== 'idle' ? median(ok.map((run) => run.p99 ?? Number.NaN)) : undefined,
    value: row.spec.scenario === 'idle' ? median(ok.map((run) => run.value ?? Number.NaN)) : undefined,
    cpuPer1k: isLatency ? undefined : perTask((run) => run.nodeCpuSeconds + run.serverCpuSeconds) * 1000,
    nodeCpuPer1k: isLatency ? undefined : perTask((run) => run.nodeCpuSeconds) * 1000,
    serverCpuPer1k: isLatency ? undefined : perTask((run) => run.serverCpuSeconds) * 1000,
    commitsPerTask: isLatency ? undefined : perTask((run) => run.commits),
    walBytesPerTask: isLatency ? undefined : perTask((run) => run.walBytes),
    peakRssMb: median(ok.map((run) => run.peakRssBytes / 1024 / 1024)),
    extra,
    otherCommits: others.length ? Math.max(...others) : undefined,
    failures,
  };
}

// --------------------------------------------------------------------------------------------
// Output

/** `pg-boss 12.38.1`: the system's title with the version that ran (the table's first column). */
const versions = new Map<string, string>();
function systemName(row: Row): string {
  const version = versions.get(row.system.id);
  return version ? `${row.system.title} ${version}` : row.system.title;
}

const mdRow = (cells: string[]) => `| ${cells.join(' | ')} |`;

/** The main table, in markdown (the README pastes it). Idle rows have their own table. */
function table(rows: Row[]): string {
  const header = ['system', 'scenario', 'tasks/s', 'steps/s', 'p50 ms', 'p99 ms', 'CPU s/1k (node+server)', 'commits/task', 'WAL B/task', 'peak RSS MB', 'noise'];
  const out = [mdRow(header), mdRow(header.map((_, i) => ([2, 3, 4, 5, 7, 8, 9].includes(i) ? '--:' : '---')))];
  const shownNotRun = new Set<SystemAdapter>();
  for (const row of rows) {
    const title = systemName(row);
    if (row.notRun) {
      if (!shownNotRun.has(row.system)) out.push(mdRow([title, 'all', 'not run', '-', '-', '-', '-', '-', '-', '-', 'see below']));
      shownNotRun.add(row.system);
      continue;
    }
    if (row.spec.scenario === 'idle') continue;
    const a = aggregate(row);
    if (!a.tasksPerSec && !a.p50 && a.value === undefined) {
      out.push(mdRow([title, label(row), 'failed', '-', '-', '-', '-', '-', '-', '-', 'see below']));
      continue;
    }
    const noiseOf = a.tasksPerSec ?? a.p50;
    const noise = noiseOf && noiseOf.values.length > 1
      ? `±${fmt(noiseOf.spreadPct / 2)}% (${fmtSig(noiseOf.min)}..${fmtSig(noiseOf.max)})`
      : (row.runs.length === 1 ? '1 run' : '-');
    const cpu = a.cpuPer1k !== undefined ? `${fmtSig(a.cpuPer1k)} (${fmtSig(a.nodeCpuPer1k)}+${fmtSig(a.serverCpuPer1k)})` : '-';
    // "~": other databases of the server committed during the run, so the WAL figure is not ours alone.
    const shared = a.otherCommits !== undefined && a.otherCommits > 0 ? '~' : '';
    out.push(mdRow([
      title,
      label(row),
      a.tasksPerSec ? fmt(a.tasksPerSec.median) : '-',
      a.stepsPerSec ? fmt(a.stepsPerSec) : '-',
      a.p50 ? fmtSig(a.p50.median) : '-',
      a.p99 !== undefined ? fmtSig(a.p99) : '-',
      cpu,
      a.commitsPerTask !== undefined ? fmtSig(a.commitsPerTask) : '-',
      a.walBytesPerTask !== undefined ? `${shared}${fmt(a.walBytesPerTask)}` : '-',
      a.peakRssMb !== undefined ? fmt(a.peakRssMb) : '-',
      noise + (a.failures.length ? ` ${a.failures.length} failed` : ''),
    ]));
  }
  for (const system of shownNotRun) out.push('', `${system.title}: not run: ${rows.find((row) => row.system === system)!.notRun}`);
  for (const row of rows) {
    for (const failure of new Set(row.runs.filter((run) => !run.ok).map((run) => run.error))) {
      out.push('', `${row.system.title} ${label(row)}: ${row.runs.filter((run) => !run.ok).length} of ${row.runs.length} run(s) failed: ${failure}`);
    }
  }
  return out.join('\n');
}

/** What idle worker processes cost the database, in markdown. */
function idleTable(rows: Row[]): string[] {
  const idle = rows.filter((row) => row.spec.scenario === 'idle' && !row.notRun);
  if (idle.length === 0) return [];
  const out = [
    mdRow(['system', 'idle processes', 'statements/s per process (client count)', 'transactions/s (server, all processes)', 'WAL bytes/s (server)', 'window s']),
    mdRow(['---', '---', '--:', '--:', '--:', '--:']),
  ];
  for (const row of idle) {
    const e = aggregate(row).extra;
    const shared = (e.otherCommits ?? 0) > 0 ? '~' : '';
    out.push(mdRow([systemName(row), row.spec.variant ?? '-',
      e.clientStatementsPerSecPerProcess !== undefined ? fmtSig(e.clientStatementsPerSecPerProcess) : '-',
      fmtSig(e.serverXactsPerSec), `${shared}${fmt(e.walBytesPerSec)}`, fmt(e.windowSeconds)]));
  }
  return out;
}

interface Target {
  target: string;
  ours: number | undefined;
  peer: number | undefined;
  ratio: number | undefined;
  need: string;
  /** 'noisy': a WAL figure taken while other databases of the server wrote (not ours alone). */
  verdict: 'PASS' | 'MISS' | 'n/a' | 'report' | 'noisy';
  note?: string;
}

/** The goals of issue 18, from this run. */
function targets(rows: Row[]): Target[] {
  const find = (system: string, key: string, processes?: number) =>
    rows.find((row) => row.system.id === system && rowKey(row.spec) === key && row.processes === processes && !row.notRun);
  const tps = (row: Row | undefined) => (row ? aggregate(row).tasksPerSec?.median : undefined);
  const sps = (row: Row | undefined) => (row ? aggregate(row).stepsPerSec : undefined);
  const result: Target[] = [];
  const ratioTarget = (target: string, ours: number | undefined, peer: number | undefined, min: number, note?: string) => {
    const ratio = ours !== undefined && peer !== undefined && peer > 0 ? ours / peer : undefined;
    result.push({ target, ours, peer, ratio, need: `>= ${min}x`, verdict: ratio === undefined ? 'n/a' : ratio >= min ? 'PASS' : 'MISS', note });
  };
  const absolute = (target: string, value: number | undefined, limit: number, strict: boolean, unit: string, note?: string) => {
    const known = value !== undefined && Number.isFinite(value);
    const pass = known && (strict ? value < limit : value <= limit);
    const verdict = !known ? 'n/a' : note ? 'noisy' : pass ? 'PASS' : 'MISS';
    result.push({ target, ours: value, peer: undefined, ratio: undefined, need: `${strict ? '<' : '<='} ${limit}${unit}`, verdict, note });
  };
  const best = (system: string, scenarios: string[]) => {
    const values = rows.filter((row) => row.system.id === system && scenarios.includes(row.spec.scenario) && !row.notRun && !row.processes).map((row) => tps(row) ?? -1);
    const value = values.length ? Math.max(...values) : -1;
    return value > 0 ? value : undefined;
  };
  const ours0 = tps(find('durable', 'drain-0'));
  const ours1 = tps(find('durable', 'drain-1'));
  const bull = best('bullmq', ['drain-0']);
  const boss = best('pg-boss', ['drain-0', 'drain-0-fetch']);
  ratioTarget(`1-step drain vs BullMQ no-op, best concurrency (${REDIS_DURABILITY})`, ours1, bull, 1);
  ratioTarget('1-step drain vs pg-boss 12 batched no-op, best configuration', ours1, boss, 1.5);
  ratioTarget('no-op drain vs BullMQ no-op', ours0, bull, 1);
  ratioTarget('no-op drain vs pg-boss 12 batched no-op', ours0, boss, 1.5);
  ratioTarget('3-step drain vs absurd, steps/s', sps(find('durable', 'drain-3')), sps(find('absurd', 'drain-3')), 10);
  const pickup = find('durable', 'pickup');
  absolute('enqueue -> start p50 (idle worker)', pickup ? aggregate(pickup).p50?.median : undefined, 2, false, ' ms');
  absolute('enqueue -> start p99 (idle worker)', pickup ? aggregate(pickup).p99 : undefined, 10, false, ' ms');
  const emit = find('durable', 'emit');
  absolute('emit -> resume p50', emit ? aggregate(emit).p50?.median : undefined, 5, false, ' ms');
  const sleepRow = find('durable', 'sleep');
  absolute('sleep lateness p50', sleepRow ? aggregate(sleepRow).p50?.median : undefined, 10, false, ' ms');
  const drain1 = find('durable', 'drain-1');
  const cost = drain1 ? aggregate(drain1) : undefined;
  const costNote = cost?.otherCommits ? `other databases committed ${cost.otherCommits} times during a run: the WAL figure includes theirs (BENCH_PRIVATE=1 for a noise-free figure)` : undefined;
  absolute('commits/task, 1-step drain', cost?.commitsPerTask, 0.01, false, '');
  absolute('WAL bytes/task, 1-step drain', cost?.walBytesPerTask, 1500, false, ' B', costNote);
  const scale = (k: number) => tps(find('durable', 'drain-1', k));
  ratioTarget('2 worker processes vs 1, same total concurrency', scale(2), scale(1), 1.6, scaleNote(rows, 2));
  const million = find('durable', 'million');
  ratioTarget(`1-step drain with ${fmt(million ? aggregate(million).extra.keptTasks : undefined)} completed tasks kept vs empty tables`, tps(million), ours1, 0.9);
  absolute('stats() with the completed tasks kept, p50', million ? aggregate(million).extra.statsP50Ms : undefined, 50, true, ' ms');
  absolute('listTasks() with the completed tasks kept, p50', million ? aggregate(million).extra.listTasksP50Ms : undefined, 50, true, ' ms');
  const snapshot = find('durable', 'snapshot');
  const snapshotRatio = tps(snapshot) !== undefined && ours1 ? tps(snapshot)! / ours1 : undefined;
  result.push({ target: '1-step drain while a REPEATABLE READ snapshot is held (pg_dump) vs without', ours: tps(snapshot), peer: ours1, ratio: snapshotRatio, need: 'report', verdict: snapshotRatio === undefined ? 'n/a' : 'report' });
  for (const c of [50, 200]) {
    const near = tps(find('durable', `distance c${c} loopback`));
    const far = tps(find('durable', `distance c${c} 2ms RTT`));
    ratioTarget(`1-step drain at concurrency ${c}, 2 ms RTT vs loopback`, far, near, 0.85);
    ratioTarget(`1-step drain at concurrency ${c}, 2 ms RTT, vs pg-boss there`, far, tps(find('pg-boss', `distance c${c} 2ms RTT`)), 1.5);
  }
  const baselineRow = find('durable', 'idle no worker (baseline)');
  const baseline = baselineRow ? aggregate(baselineRow).extra : undefined;
  const baselineWal = baseline && !(baseline.otherCommits > 0) ? baseline.walBytesPerSec : undefined;
  for (const row of rows.filter((r) => r.system.id === 'durable' && r.spec.scenario === 'idle' && !r.notRun && r !== baselineRow)) {
    const e = aggregate(row).extra;
    absolute(`idle: statements/s per process, ${row.spec.variant}`, e.clientStatementsPerSecPerProcess, 1, false, '/s');
    // Less the server's own WAL with no worker (running-xacts records, checkpoints), when measured clean.
    const wal = baselineWal !== undefined && e.walBytesPerSec !== undefined ? Math.max(0, e.walBytesPerSec - baselineWal) : e.walBytesPerSec;
    absolute(`idle: WAL bytes/s, ${row.spec.variant}${baselineWal !== undefined ? `, less the server's baseline of ${fmtSig(baselineWal)} B/s` : ''}`, wal, 0, false, ' B/s',
      (e.otherCommits ?? 0) > 0 ? 'other databases wrote during the window: server-wide WAL, not ours alone (BENCH_PRIVATE=1)' : undefined);
  }
  return result;
}

/** The goals as a markdown table: goal, need, measured, ratio, verdict. */
function goalsTable(goals: Target[]): string[] {
  const out = [mdRow(['goal (issue 18)', 'need', 'measured', 'ratio', 'verdict']), mdRow(['---', '--:', '--:', '--:', '---'])];
  for (const goal of goals) {
    const measured = goal.ratio !== undefined
      ? `${fmtSig(goal.ours)} vs ${fmtSig(goal.peer)}`
      : goal.ours !== undefined && Number.isFinite(goal.ours) ? fmtSig(goal.ours) : 'not measured';
    out.push(mdRow([goal.target + (goal.note ? ` (${goal.note})` : ''), goal.need, measured, goal.ratio !== undefined ? `${fmtSig(goal.ratio)}x` : '-', goal.verdict]));
  }
  return out;
}

/** Whether Postgres had CPU to spare in the scale row: its share of the machine's cores. */
function scaleNote(rows: Row[], k: number): string | undefined {
  const row = rows.find((r) => r.system.id === 'durable' && r.processes === k);
  if (!row) return undefined;
  const ok = row.runs.filter((run) => run.ok);
  if (ok.length === 0) return undefined;
  const pgShare = median(ok.map((run) => run.serverCpuSeconds / run.seconds / cpus().length)) * 100;
  const nodeShare = median(ok.map((run) => run.nodeCpuSeconds / run.seconds / cpus().length)) * 100;
  return `Postgres used ${fmt(pgShare)}% and node ${fmt(nodeShare)}% of the ${cpus().length} cores`;
}

function peerRatios(rows: Row[]): string[] {
  const ours = (key: string) => rows.find((row) => row.system.id === 'durable' && rowKey(row.spec) === key && !row.processes);
  const lines: string[] = [];
  for (const row of rows) {
    if (row.system.id === 'durable' || row.notRun || !row.spec.scenario.startsWith('drain')) continue;
    const theirs = aggregate(row).tasksPerSec?.median;
    const mineRow = ours(row.spec.scenario === 'drain-3' ? 'drain-3' : 'drain-1');
    const mine = mineRow ? aggregate(mineRow).tasksPerSec?.median : undefined;
    const mineLabel = row.spec.scenario === 'drain-3' ? '3-step' : '1-step';
    if (!theirs || !mine) continue;
    lines.push(`  ours ${mineLabel} / ${row.system.title} ${label(row)}: ${fmtSig(mine / theirs)}x (${fmt(mine)} vs ${fmt(theirs)} tasks/s)`);
  }
  const pickup = rows.find((row) => row.system.id === 'durable' && row.spec.scenario === 'pickup');
  const ourPickup = pickup ? aggregate(pickup).p50?.median : undefined;
  for (const row of rows) {
    if (row.system.id === 'durable' || row.spec.scenario !== 'pickup' || row.notRun) continue;
    const theirs = aggregate(row).p50?.median;
    if (theirs && ourPickup) lines.push(`  enqueue -> start p50, ours / ${row.system.title}: ${fmtSig(ourPickup / theirs)}x (${fmtSig(ourPickup)} vs ${fmtSig(theirs)} ms)`);
  }
  return lines;
}

// --------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date();
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  log(`nestjs-durable benchmark: N=${N}, ${RUNS} run(s) per row, ${new Date().toISOString()}${QUICK ? ' -- BENCH_QUICK: a smoke run, no tuning pass; the figures mean nothing' : ''}`);
  log(`machine: ${cpuModel}, ${cpus().length} cores, ${fmt(totalmem() / 2 ** 30, 1)} GiB; Node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const server = await startServer(log);
  const info: ServerInfo = await serverInfo(server);
  log(`postgres: ${info.version.split(' on ')[0]} (${server.kind}, ${redactUrl(server.adminUrl)}); ` +
    Object.entries(info.settings).map(([k, v]) => `${k}=${v}`).join(', '));
  if (server.postmasterPid === undefined) log('postgres CPU: not measurable (the server is not a local process)');

  const wanted = process.env.BENCH_SYSTEMS?.split(',').map((s) => s.trim()).filter(Boolean) ?? DEFAULT_SYSTEMS;
  for (const id of wanted) if (!SYSTEMS[id]) throw new Error(`BENCH_SYSTEMS: unknown system "${id}" (known: ${Object.keys(SYSTEMS).join(', ')})`);
  const adapters: SystemAdapter[] = [];
  const availability = new Map<string, { label: string; notRun?: string }>();
  for (const id of Object.keys(SYSTEMS).filter((key) => wanted.includes(key))) {
    const adapter = await SYSTEMS[id]();
    const available = await adapter.availability();
    if (adapter.needsRedis && !available.notRun) {
      const binary = redisBinary();
      if ('reason' in binary) available.notRun = binary.reason;
      else available.label += `, redis-server ${binary.version} (${REDIS_DURABILITY})`;
    }
    adapters.push(adapter);
    availability.set(id, available);
    const version = /\d+\.\d+\.\d+[^\s,)]*/.exec(available.label)?.[0];
    if (version) versions.set(id, version);
    log(`  ${adapter.title}: ${available.label}${available.notRun ? ` -- NOT RUN: ${available.notRun}` : ''}`);
  }

  const ctx: Context = { server };
  // Interrupted: no child, private redis-server or bench database is left behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`\n${signal}: cleaning up`);
      for (const child of liveChildren) child.kill('SIGKILL');
      void (async () => {
        await ctx.redis?.stop().catch(() => undefined);
        const { rows } = await server.admin.query(`select datname from pg_database where datname like $1`, [`bench\\_${process.pid}\\_%`]).catch(() => ({ rows: [] as { datname: string }[] }));
        for (const row of rows) await dropDatabase(server.adminUrl, row.datname, server.admin).catch(() => undefined);
        await server.stop().catch(() => undefined);
        process.exit(130);
      })();
    });
  }
  if (adapters.some((adapter) => adapter.needsRedis && !availability.get(adapter.id)!.notRun)) {
    ctx.redis = await startRedis();
    log(`redis: private redis-server ${ctx.redis.version} on port ${ctx.redis.port} (${REDIS_DURABILITY}, no RDB snapshots)`);
  }

  const rows: Row[] = [];
  const scenarios = process.env.BENCH_SCENARIOS?.split(',').map((s) => s.trim()).filter(Boolean);
  const selected = (key: string) => !scenarios || scenarios.includes(key);
  for (const adapter of adapters) {
    const notRun = availability.get(adapter.id)!.notRun;
    for (const spec of adapter.rows) {
      // A row whose settings come from another row needs that row too.
      // A scenario selects all its rows; `scenario variant` (e.g. "distance c50 2ms RTT") one row alone.
      const picked = (row: RowSpec) => selected(row.scenario) || selected(rowKey(row));
      if (picked(spec) || adapter.rows.some((other) => picked(other) && other.settingsOf === rowKey(spec))) {
        rows.push({ system: adapter, spec, tuning: [], runs: [], notRun });
      }
    }
    if (adapter.id === 'durable' && selected('scale')) {
      if (!rows.some((row) => row.system === adapter && rowKey(row.spec) === 'drain-1')) {
        rows.push({ system: adapter, spec: adapter.rows.find((spec) => rowKey(spec) === 'drain-1')!, tuning: [], runs: [], notRun });
      }
      for (const k of SCALE) rows.push({ system: adapter, spec: { scenario: 'drain-1', settingsOf: 'drain-1' }, processes: k, tuning: [], runs: [], notRun });
    }
  }
  const live = rows.filter((row) => !row.notRun);

  // Pass 0: pick the best settings of rows with several candidates.
  const cells = live.reduce((sum, row) => sum + (!QUICK && !row.spec.settingsOf && row.spec.candidates && row.spec.candidates.length > 1 ? row.spec.candidates.length : 0) + (row.spec.runs ?? RUNS), 0);
  let cell = 0;
  const progress = (row: Row, what: string, result: RunResult) =>
    log(`[${++cell}/${cells}] ${row.system.title} ${label(row)} ${what}: ${describeRun(result)}`);
  for (const row of live) {
    const candidates = row.spec.candidates ?? [{}];
    if (candidates.length === 1 || row.spec.settingsOf || QUICK) continue;
    for (const settings of candidates) {
      const result = await measure(ctx, row, settings, Math.min(nFor(row), TUNE_N));
      row.tuning.push({ settings, tasksPerSec: result.tasksPerSec, error: result.error });
      progress(row, `tuning ${JSON.stringify(settings)}`, result);
    }
  }
  for (const row of live) {
    if (!row.spec.settingsOf) row.settings = bestSettings(row) ?? (row.spec.candidates?.[0] ?? {});
  }
  for (const row of live) {
    if (!row.spec.settingsOf) continue;
    const source = live.find((other) => other.system === row.system && rowKey(other.spec) === row.spec.settingsOf && !other.processes);
    row.settings = source?.settings ?? source?.spec.candidates?.[0] ?? {};
  }

  // Measured runs, interleaved (run 1 of every row, then run 2, ...) so that a noisy minute of
  // the machine hits every system rather than one.
  for (let run = 0; run < RUNS; run += 1) {
    for (const row of live) {
      if (run >= (row.spec.runs ?? RUNS)) continue;
      const result = await measure(ctx, row, row.settings!);
      row.runs.push(result);
      progress(row, `run ${run + 1} ${JSON.stringify(row.settings)}`, result);
    }
  }

  await ctx.redis?.stop();
  await server.stop();

  const output: string[] = [];
  output.push('');
  output.push(`Results: medians of ${RUNS} run(s); noise = half the min-max spread of the runs, in % of the median (min..max)`);
  const loads = rows.flatMap((row) => row.runs.map((run) => run.load1 ?? Number.NaN)).filter(Number.isFinite);
  if (loads.length) {
    output.push(`Machine load (1-min load average at the end of each run, ${cpus().length} cores): median ${fmt(median(loads), 1)}, ` +
      `min ${fmt(Math.min(...loads), 1)}, max ${fmt(Math.max(...loads), 1)}; other work on the machine slows every row it overlaps`);
  }
  output.push(table(rows));
  output.push('');
  output.push('Settings used (best of the tuning pass where there were candidates):');
  for (const row of live) {
    const tuning = row.tuning.length > 1 ? `  [tuning: ${row.tuning.map((t) => `${JSON.stringify(t.settings)} ${t.error ? 'failed' : fmt(t.tasksPerSec)}`).join('; ')}]` : '';
    output.push(`  ${row.system.title} ${label(row)}: ${JSON.stringify(row.settings)}, N=${nFor(row)}${tuning ? `${tuning} (tuning N=${Math.min(nFor(row), TUNE_N)})` : ''}`);
  }
  for (const adapter of adapters) if (adapter.note) output.push(`  ${adapter.note}`);
  output.push('');
  const idle = idleTable(rows);
  if (idle.length > 0) {
    output.push('Idle cost (no task to run; "~": other databases wrote during the window, so the server-wide WAL is not ours alone):');
    output.push('', ...idle, '');
  }
  const details = extraLines(rows);
  if (details.length > 0) output.push('Details:', ...details, '');
  output.push(`Goals of issue 18, ratios from this run${QUICK ? ' (BENCH_QUICK: a smoke run, the figures mean nothing)' : ''}:`);
  const goals = targets(rows);
  output.push('', ...goalsTable(goals));
  output.push('');
  output.push('Ours / each peer:');
  output.push(...peerRatios(rows));
  const flow = flowLines(rows);
  if (flow.length > 0) {
    output.push('');
    output.push('Flow control (issue 15): each flow row\'s tasks/s over its own system\'s unlimited drain of the same kind (same worker settings):');
    output.push(...flow);
  }
  const fanOut = fanOutLines(rows);
  if (fanOut.length > 0) {
    output.push('');
    output.push(`Fan-out / fan-in of ${FANOUT_CHILDREN} children (every repetition of every run pooled; wake = the last child's function returned -> the parent's line after its join):`);
    output.push(...fanOut);
  }
  const text = output.join('\n');
  log(text);

  const outPath = process.env.BENCH_OUT ?? join(ROOT, 'bench', 'results', `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(outPath), { recursive: true });
  const json = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    n: N,
    runs: RUNS,
    machine: { cpu: cpuModel, cores: cpus().length, memoryGiB: totalmem() / 2 ** 30, node: process.version, loadAverageAtEnd: loadavg() },
    postgres: { version: info.version, kind: server.kind, settings: info.settings },
    redis: ctx.redis ? { version: ctx.redis.version, durability: REDIS_DURABILITY } : undefined,
    ourVersion: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    systems: Object.fromEntries([...availability].map(([id, value]) => [id, value])),
    rows: rows.map((row) => ({
      system: row.system.id,
      title: row.system.title,
      scenario: row.spec.scenario,
      variant: row.spec.variant,
      label: label(row),
      processes: row.processes ?? 1,
      n: nFor(row),
      notRun: row.notRun,
      settings: row.settings,
      tuning: row.tuning,
      aggregate: row.notRun ? undefined : aggregate(row),
      runs: row.runs,
    })),
    targets: goals,
    table: text,
  };
  writeFileSync(outPath, JSON.stringify(json, null, 2));
  log(`\nJSON: ${relative(process.cwd(), outPath)}`);
}

/** The named figures of the rows that have some (million: stats/listTasks latency), and the distance ratios. */
function extraLines(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    if (row.notRun || row.spec.scenario === 'idle') continue;
    const extra = aggregate(row).extra;
    const keys = Object.keys(extra);
    if (keys.length === 0) continue;
    lines.push(`  ${systemName(row)} ${label(row)}: ${keys.map((key) => `${key} ${fmtSig(extra[key])}`).join(', ')}`);
  }
  for (const system of ['durable', 'pg-boss']) {
    for (const c of [50, 200]) {
      const near = rows.find((row) => row.system.id === system && rowKey(row.spec) === `distance c${c} loopback`);
      const far = rows.find((row) => row.system.id === system && rowKey(row.spec) === `distance c${c} 2ms RTT`);
      const a = near ? aggregate(near).tasksPerSec?.median : undefined;
      const b = far ? aggregate(far).tasksPerSec?.median : undefined;
      if (a && b) lines.push(`  ${systemName(near!)} at concurrency ${c}: 2 ms RTT keeps ${fmtSig(b / a)}x of loopback (${fmt(b)} vs ${fmt(a)} tasks/s)`);
    }
  }
  return lines;
}

/** The `flow` rows: each over its system's `unlimited` flow row; the binding rate row against its limit too. */
function flowLines(rows: Row[]): string[] {
  const lines: string[] = [];
  const flow = rows.filter((row) => row.spec.scenario === 'flow' && !row.notRun);
  for (const system of new Set(flow.map((row) => row.system))) {
    const base = flow.find((row) => row.system === system && row.spec.variant === 'unlimited');
    const plain = base ? aggregate(base).tasksPerSec?.median : undefined;
    for (const row of flow.filter((r) => r.system === system && r !== base)) {
      const tps = aggregate(row).tasksPerSec?.median;
      if (!tps) continue;
      // A binding rate limit: the first window's `max` starts come at once; the pace is the rest over the window.
      const max = Number(row.settings?.max);
      const perSec = (max / Number(row.settings?.perMs)) * 1000;
      const ok = row.runs.filter((run) => run.ok && run.n > max);
      const pace = median(ok.map((run) => (run.n - max) / run.seconds));
      const limit = row.settings?.mode === 'rate' && perSec < (plain ?? Infinity) && ok.length
        ? `; limit ${fmt(perSec)}/s: after the first window's ${fmt(max)} starts, ${fmt(pace)}/s = ${fmtSig(pace / perSec)}x the limit` : '';
      lines.push(`  ${systemName(row)} ${row.spec.variant}: ${plain ? `${fmtSig(tps / plain)}x` : '-'} (${fmt(tps)} vs ${plain ? fmt(plain) : '-'} tasks/s${limit})`);
    }
  }
  if (flow.some((row) => row.system.id === 'pg-boss')) lines.push('  pg-boss has no consumer-side rate limit (singletonSeconds throttles sends): no rate rows');
  if (flow.some((row) => row.system.id === 'bullmq')) lines.push('  BullMQ groups (a limit per group key) are BullMQ Pro only: no groups row');
  return lines;
}

function fanOutLines(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    if (row.spec.scenario !== 'fanout' || row.notRun) continue;
    const ok = row.runs.filter((run) => run.ok && run.samples && run.totals);
    if (ok.length === 0) continue;
    const wakes = ok.flatMap((run) => run.samples!);
    const totals = ok.flatMap((run) => run.totals!);
    lines.push(`  ${row.system.title}${row.spec.variant ? ` (${row.spec.variant})` : ''}: wake p50 ${fmtSig(percentile(wakes, 50))} ms, p99 ${fmtSig(percentile(wakes, 99))} ms (max ${fmtSig(Math.max(...wakes))}); ` +
      `total p50 ${fmtSig(percentile(totals, 50))} ms, p99 ${fmtSig(percentile(totals, 99))} ms; ${wakes.length} fan-outs`);
  }
  return lines;
}

function bestSettings(row: Row): Settings | undefined {
  const ok = row.tuning.filter((t) => Number.isFinite(t.tasksPerSec));
  if (ok.length === 0) return undefined;
  return ok.reduce((best, t) => (t.tasksPerSec > best.tasksPerSec ? t : best)).settings;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
