/**
 * Terminology
 * - task: one durable unit of work: a name, JSON params, options and a result.
 * - run: one attempt at executing a task; a task has 1..n runs and at most one is live.
 * - attempt: the run's number, 1, 2, ...; a new attempt starts only after a failure.
 * - step: a named, checkpointed piece of a task; its JSON result is stored once it succeeds.
 * - checkpoint: the stored result of a step (also of a sleep, an event wait, an emit).
 * - suspension: a run gives up its worker slot to sleep or wait, and is resumed later by
 *   running the handler again from the top, skipping every checkpointed step.
 * - lease: a worker's claim on a running run, renewed by checkpoints and heartbeats.
 * - queue: a namespace for tasks and events.
 */
export interface TaskContext {
  readonly taskId: string;
  readonly runId: string;
  readonly attempt: number;
  readonly taskName: string;
  readonly queue: string;
  readonly headers: Readonly<Record<string, unknown>>;

  /**
   * Runs `fn` once and checkpoints its JSON result; later executions return the stored value
   * without calling `fn`. Repeated names in one execution become `name`, `name#2`, ...
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<T>;
  /** Suspends for `ms` milliseconds (database clock). The wake time is checkpointed. */
  sleepFor(name: string, ms: number): Promise<void>;
  /** Suspends until `date` (database clock); a past date returns at once. */
  sleepUntil(name: string, date: Date): Promise<void>;
  /**
   * Returns the event's payload, suspending until it is emitted on the task's queue.
   * Throws `EventTimeoutError` after `timeoutMs`. The outcome is checkpointed.
   */
  awaitEvent<T = unknown>(eventName: string, options?: AwaitEventOptions): Promise<T>;
  /** Emits an event on the task's queue, once: a replay does not emit again. */
  emitEvent(eventName: string, payload?: unknown): Promise<void>;
  /** Renews the lease for `extendMs` (default: the worker's `leaseMs`). */
  heartbeat(extendMs?: number): Promise<void>;
}

export interface AwaitEventOptions {
  /** @default wait forever */
  timeoutMs?: number;
  /** The checkpoint's name. @default `$event:<eventName>` */
  stepName?: string;
}

/** What a `@DurableTask` class implements. */
export interface DurableTaskHandler<P = unknown, O = unknown> {
  run(params: P, ctx: TaskContext): Promise<O>;
}
