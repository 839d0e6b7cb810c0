// The shapes the statement builders take, named so that callers and encoders share them.

/** A parameterised statement, ready for `pg`. */
export interface Statement {
  text: string;
  values: unknown[];
}

/** One spawn; params, headers, retry and cancellation are JSON text. */
export interface SpawnRow {
  queue: string;
  name: string;
  params: string;
  headers: string;
  maxAttempts: number;
  retry: string;
  cancellation: string | null;
  idempotencyKey: string | null;
  delayMs: number | null;
  runAt: Date | null;
  /** Higher is claimed first within a queue (default 0). */
  priority: number;
  /** Splits the task's concurrency limit by key (null: one limit for the name). */
  concurrencyKey: string | null;
}

/** Who writes for a run: every worker write is fenced on these. */
export interface RunFence {
  taskId: string;
  runId: string;
  workerId: string;
  /** The claim epoch: which claim of the run (and so which execution) writes. */
  epoch: number;
}

/** A checkpoint, a completion or a progress value, group-committed by `write_batch`. */
export interface WorkerWrite {
  kind: 'checkpoint' | 'complete' | 'progress';
  taskId: string;
  runId: string;
  /** The claim epoch of the execution that writes (see RunFence). */
  epoch: number;
  /** The checkpoint's name (checkpoints only). */
  name?: string;
  /** JSON text, or null for undefined. */
  value: string | null;
  attempt: number;
  leaseMs: number;
}

export interface ClaimArgs {
  queues: string[];
  workerId: string;
  limit: number;
  leaseMs: number;
  /** Also sweep expired leases and cancellation policies (bounded by `limit`). */
  sweep: boolean;
  /** Which queue (index into `queues`, modulo) gets the first share of the free slots; random if absent. */
  firstQueue?: number;
}

export interface ListTasksArgs {
  queue: string | null;
  state: string | null;
  name: string | null;
  cursor: string | null;
  limit: number;
  /** Only the children of this task. */
  parentTaskId: string | null;
}
