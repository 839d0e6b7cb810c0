import type { EntityManager } from 'typeorm';

/**
 * How long to wait before the next attempt after a failure.
 * - `none`: a failure is final (no further attempt).
 * - `fixed`: `delayMs` between attempts.
 * - `exponential`: `baseDelayMs * factor^(attempt - 1)`, capped at `maxDelayMs`.
 *
 * Built-in default: `{ kind: 'exponential', baseDelayMs: 1000, factor: 2, maxDelayMs: 300000 }`.
 */
export type RetryStrategy =
  | { kind: 'none' }
  | { kind: 'fixed'; delayMs: number }
  | {
      kind: 'exponential';
      baseDelayMs: number;
      /** @default 2 */
      factor?: number;
      /** @default no cap */
      maxDelayMs?: number;
    };

/** Cancels tasks that wait or run too long. Checked by every worker poll on the task's queue. */
export interface CancellationPolicy {
  /** Cancel a task not started within this long after its spawn. */
  maxDelayMs?: number;
  /** Cancel a task not finished this long after its first start (also while it sleeps). */
  maxDurationMs?: number;
}

/** Options that module `defaults`, `@DurableTask` and `spawn` can each set; the latter wins. */
export interface TaskPolicyOptions {
  /** Attempts before the task fails for good. @default 5 */
  maxAttempts?: number;
  /** @default exponential from 1 s, factor 2, capped at 5 min */
  retry?: RetryStrategy;
  /** @default none */
  cancellation?: CancellationPolicy;
}

/** At most `max` starts in any window of `perMs` milliseconds, across all workers. */
export interface RateLimit {
  /** A positive integer. */
  max: number;
  /** The window, in milliseconds (positive). */
  perMs: number;
}

/** A schedule declared on a task: created or updated at startup under the task's name. */
export interface TaskSchedule {
  /** 5 fields (minute first) or 6 (second first), as croner reads them. */
  cron: string;
  /** The params of each tick's task. @default null */
  params?: unknown;
  /** An IANA zone the cron is read in. @default 'UTC' */
  timezone?: string;
}

/** Options of `@DurableTask`. */
export interface DurableTaskOptions extends TaskPolicyOptions {
  /** The task's name, unique per queue. Stored with every task: renaming orphans old tasks. */
  name: string;
  /** @default the module's `queue` */
  queue?: string;
  /**
   * At most this many tasks of this name `running` at once, across all workers and processes
   * (sleeping tasks do not count); per `concurrencyKey` when a spawn gives one. Enforced at claim
   * time by the database. A positive integer. @default no limit
   */
  concurrency?: number;
  /** At most `max` starts (claims: first attempts, retries and resumes) per `perMs`. @default no limit */
  rateLimit?: RateLimit;
  /** Spawn this task on a cron schedule. @default none */
  schedule?: TaskSchedule;
}

/** Options of `DurableClient.spawn`. */
export interface SpawnOptions extends TaskPolicyOptions {
  /** @default the task's queue, else the module's */
  queue?: string;
  /** JSON-able metadata the handler reads as `ctx.headers`. */
  headers?: Record<string, unknown>;
  /** A second spawn with the same key on the same queue returns the first task (`created: false`). */
  idempotencyKey?: string;
  /** Do not start before this many milliseconds from now (database clock). */
  delayMs?: number;
  /** Do not start before this time. */
  runAt?: Date;
  /** Spawn inside the caller's transaction: it commits or rolls back with it. */
  manager?: EntityManager;
  /**
   * An integer; among the runnable tasks of a queue, higher is claimed first, equal keep spawn
   * order. A steady stream of higher-priority work starves lower priorities. @default 0
   */
  priority?: number;
  /** Applies the task's `concurrency` limit per key (e.g. per customer) instead of per name. @default none */
  concurrencyKey?: string;
}

export interface SpawnResult {
  taskId: string;
  /** The run of attempt 1. */
  runId: string;
  attempt: number;
  /** `false` when an idempotency key matched an existing task. */
  created: boolean;
}

export interface EmitOptions {
  /** @default the module's queue */
  queue?: string;
  /** Emit inside the caller's transaction. */
  manager?: EntityManager;
}
