/**
 * The common interface of the benchmark's adapters. Each system (ours, a peer, the hand-written
 * limit) is one module in bench/systems/ exporting `system: SystemAdapter`. The orchestrator
 * (bench/run.ts) runs every measurement ("cell") in a fresh child process (bench/cell.ts), on a
 * fresh database, so that CPU, memory and library state of one cell never leak into another.
 */

/**
 * What is measured:
 * - `drain-0|1|3`: N tasks already spawned (0 = a no-op job, 1 or 3 checkpointed steps), the
 *   worker started, time from the first handler start to the last handler end;
 * - `spawn-seq`: N spawns one after the other; `spawn-batch`: N spawns as fast as the system's
 *   batch path allows;
 * - `pickup`: enqueue to handler start on an idle worker, sequential samples;
 * - `emit`: event emitted to the waiting handler resumed;
 * - `sleep`: a 100 ms sleep's wake-up lateness (actual minus requested);
 * - `idle`: what idle worker processes cost the database: the cell settles, calls
 *   `probe.started()` (the orchestrator reads the database's transaction counters and the WAL
 *   position), idles `settings.idleSeconds`, and returns; the orchestrator reads the meters again
 *   (server side: transactions/s and WAL bytes/s); the cell's `extra` adds what it counted itself;
 * - `million`: the 1-step drain with BENCH_MILLION (default 1,000,000) completed tasks kept in the
 *   tables; `extra` has the latency of `stats()` and `listTasks()` on them;
 * - `snapshot`: the 1-step drain while a REPEATABLE READ transaction (what pg_dump holds) keeps
 *   one snapshot open beside the workers for the whole window;
 * - `distance`: a drain through a TCP proxy that delays each direction by `settings.rttMs / 2`
 *   (0: loopback, no proxy), at `settings.concurrency`;
 * - `flow`: N no-op tasks drained under flow control (`settings.mode`: none, priorities, groups,
 *   global, rate; bench/systems/flow-rows.ts), beside the same drain without it;
 * - `fanout`: a parent workflow starts FANOUT_CHILDREN child workflows of one step, one after
 *   another, and waits for all of them; n repetitions, one after another. Samples: the time from
 *   the end of the last child's function to the parent's line after its wait; totals: from
 *   before the parent's spawn to that line.
 */
export type Scenario =
  | 'drain-0' | 'drain-0-fetch' | 'drain-1' | 'drain-3'
  | 'spawn-seq' | 'spawn-batch'
  | 'pickup' | 'emit' | 'sleep' | 'idle' | 'fanout'
  | 'million' | 'snapshot' | 'distance' | 'flow';

/** The idle rows: seconds measured (BENCH_IDLE_SECONDS) after the processes settled (BENCH_IDLE_SETTLE). */
export const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? (process.env.BENCH_QUICK === '1' ? 10 : 60));
export const IDLE_SETTLE = Number(process.env.BENCH_IDLE_SETTLE ?? (process.env.BENCH_QUICK === '1' ? 3 : 12));

/** Children per fan-out of the `fanout` scenario (BENCH_FANOUT_CHILDREN, default 1000). */
export const FANOUT_CHILDREN = Number(process.env.BENCH_FANOUT_CHILDREN ?? 1000);

/** What a `fanout` cell measures: per repetition, the wake-up after the last child and the whole fan-out. */
export interface FanOutSamples {
  samples: number[];
  totals: number[];
}

/** What a cell's run() may resolve with besides a plain list of samples. */
export interface CellOutcome {
  samples?: number[];
  totals?: number[];
  /** Named figures of the cell (medians across runs are printed under the table). */
  extra?: Record<string, number>;
  /** The end of the measured window when run() did more after it (epoch ms). */
  endedAt?: number;
}

export type Settings = Record<string, string | number | boolean>;

export interface CellContext {
  /** The cell's fresh database. */
  databaseUrl: string;
  /** The private redis-server (BullMQ only). */
  redisUrl?: string;
  /** Tasks to drain or spawn, or latency samples to take. */
  n: number;
  settings: Settings;
  probe: Probe;
  log(line: string): void;
}

export interface Cell {
  /** Before the measured window: schema, prefill. Must leave no connection open. */
  prepare(): Promise<void>;
  /**
   * The measured work. Drains and spawns report through `probe` and resolve once
   * `probe.done` resolved; latency cells resolve with their samples in milliseconds.
   */
  run(): Promise<number[] | FanOutSamples | CellOutcome | void>;
  /** Stops workers and closes every connection. */
  close(): Promise<void>;
}

export type CellFactory = (ctx: CellContext) => Cell;

export interface Availability {
  /** The version that will run, e.g. "pg-boss 10.4.2". */
  label: string;
  /** Why it cannot run here, if it cannot. */
  notRun?: string;
}

/** One row of the table: a scenario of a system, at its best settings. */
export interface RowSpec {
  scenario: Scenario;
  /** Tells rows of one system and scenario apart, e.g. 'local queue'. */
  variant?: string;
  /** Candidate settings; with more than one, a first pass (1 run each) picks the fastest. */
  candidates?: Settings[];
  /** Use the best settings found for another row of the system (`scenario` or `scenario variant`). */
  settingsOf?: string;
  /** Largest N (slow systems or scenarios), to keep a full run short. */
  maxN?: number;
  /** Runs of this row, when not BENCH_RUNS (the idle check needs one). */
  runs?: number;
}

export interface SystemAdapter {
  /** Key in BENCH_SYSTEMS (see systems/index.ts). */
  id: string;
  /** What the table shows. */
  title: string;
  /** A short note printed under the table (settings, caveats). */
  note?: string;
  /** Checked in the orchestrator: must not import the system's package at module load. */
  availability(): Promise<Availability>;
  cells: Partial<Record<Scenario, CellFactory>>;
  rows: RowSpec[];
  /** Needs the private redis-server. */
  needsRedis?: boolean;
}

export const rowKey = (row: Pick<RowSpec, 'scenario' | 'variant'>): string => (row.variant ? `${row.scenario} ${row.variant}` : row.scenario);

export const now = (): number => performance.timeOrigin + performance.now();

/**
 * Counts handler starts and ends in a child process. The first start opens the measured window
 * (and tells the orchestrator, which reads the Postgres CPU meter then); the `target`-th end
 * closes it.
 */
export class Probe {
  count = 0;
  firstStart: number | undefined;
  lastEnd: number | undefined;
  cpuAtStart: NodeJS.CpuUsage | undefined;
  cpuAtEnd: NodeJS.CpuUsage | undefined;
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(
    readonly target: number,
    private readonly onFirstStart: () => void = () => undefined,
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  started(): void {
    if (this.firstStart !== undefined) return;
    this.firstStart = now();
    this.cpuAtStart = process.cpuUsage();
    this.onFirstStart();
  }

  finished(count = 1): void {
    this.count += count;
    this.lastEnd = now();
    if (this.count >= this.target && this.cpuAtEnd === undefined) {
      this.cpuAtEnd = process.cpuUsage();
      this.resolveDone();
    }
  }

  /** Node CPU seconds between the first start and the target-th end. */
  get cpuSeconds(): number {
    if (!this.cpuAtStart || !this.cpuAtEnd) return Number.NaN;
    return (this.cpuAtEnd.user - this.cpuAtStart.user + this.cpuAtEnd.system - this.cpuAtStart.system) / 1e6;
  }
}

export { sleep } from '../../devkit/wait.js';

/** The latest end of a child, per fan-out repetition (the handlers report here). */
export class LastEnds {
  private readonly ends = new Map<number, number>();

  ended(rep: number): void {
    this.ends.set(rep, Math.max(this.ends.get(rep) ?? 0, now()));
  }

  of(rep: number): number {
    const end = this.ends.get(rep);
    if (end === undefined) throw new Error(`no child of fan-out ${rep} ended`);
    return end;
  }
}

/** Runs `task(i)` for i in [0, n) with at most `parallel` at once. */
export async function inParallel(n: number, parallel: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, async () => {
    while (next < n) await task(next++);
  }));
}

/** A promise with its resolve function, keyed for handlers that report to a waiting test. */
export class Signals<K, V = number> {
  private readonly waiting = new Map<K, (value: V) => void>();
  private readonly early = new Map<K, V>();

  wait(key: K, timeoutMs = 30_000): Promise<V> {
    const early = this.early.get(key);
    if (early !== undefined) {
      this.early.delete(key);
      return Promise.resolve(early);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new Error(`no signal for ${String(key)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(key, (value) => {
        clearTimeout(timer);
        resolve(value);
      });
    });
  }

  signal(key: K, value: V): void {
    const resolve = this.waiting.get(key);
    if (resolve) {
      this.waiting.delete(key);
      resolve(value);
    } else {
      this.early.set(key, value);
    }
  }
}

/** Version of an installed package, found as Node resolves it from the repository root upwards. */
export async function installedVersion(name: string): Promise<string | undefined> {
  const { readFileSync } = await import('node:fs');
  const { dirname, join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  let dir = fileURLToPath(new URL('../../', import.meta.url));
  for (;;) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      const parent = dirname(dir);
      if (parent === dir) return undefined;
      dir = parent;
    }
  }
}
