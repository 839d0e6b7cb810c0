import type { SpawnOptions } from './task-options.interface.js';

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
  /**
   * Publishes a progress value (any JSON), shown as `TaskSnapshot.progress` and sent to
   * `client.watch` subscribers; the last value wins. Not a checkpoint: not replayed, and cheap
   * (values are coalesced and stored with the worker's next batch of writes, at the latest
   * before the run's outcome or a suspension). Allowed inside a step's function. A value that
   * is not JSON throws `SerializationError`; a run that was cancelled, suspended or fenced off
   * is refused like any other write. The promise (awaiting it is optional) resolves once the
   * value, or a later one, is stored.
   */
  setProgress(value: unknown): Promise<void>;

  /**
   * Spawns a child task (a `@DurableTask` class or a task name, options as `DurableClient.spawn`
   * without `manager`) and returns its handle. Checkpointed under `stepName`: a replay or retry
   * returns the same handle and never spawns a second child. Bad input is refused like
   * `client.spawn` and writes nothing.
   */
  spawn<O, P = unknown>(stepName: string, task: new (...args: never[]) => DurableTaskHandler<P, O>, params: P, options?: ChildSpawnOptions): Promise<TaskHandle<O>>;
  spawn<O = unknown>(stepName: string, task: string, params?: unknown, options?: ChildSpawnOptions): Promise<TaskHandle<O>>;
  /**
   * The child's result. Until the child is terminal the task is suspended (no worker slot held).
   * A failed child throws `ChildFailedError`, a cancelled one `ChildCancelledError`, `timeoutMs`
   * passing `TimeoutError`. The outcome is checkpointed. Only this task's children may be joined.
   */
  join<O>(handle: TaskHandle<O>, options?: JoinOptions): Promise<O>;
  /**
   * Every result, in the order of `handles`, after one suspension until all are terminal. If one
   * failed or was cancelled, throws for the first such handle in the list (after all are terminal).
   * `joinAll([])` returns `[]`.
   */
  joinAll<O>(handles: readonly TaskHandle<O>[]): Promise<O[]>;
  /**
   * The first child to complete (`index` into `handles`); throws `ChildFailedError` /
   * `ChildCancelledError` (the first in the list) only when every child failed or was cancelled.
   * `handles` must not be empty.
   */
  joinAny<O>(handles: readonly TaskHandle<O>[]): Promise<{ index: number; result: O }>;
  /** The database clock, recorded once: every replay and retry returns the same `Date`; each call a fresh one. */
  now(): Promise<Date>;
  /** A random number in [0, 1), recorded once (the same on every replay and retry; each call a fresh one). */
  random(): Promise<number>;
  /** A random UUID, recorded once (the same on every replay and retry; each call a fresh one). */
  uuid(): Promise<string>;
}

/** A child task spawned by `ctx.spawn`: plain JSON, so it may be returned from a step, stored or passed in params. */
export interface TaskHandle<O = unknown> {
  taskId: string;
  taskName: string;
  queue: string;
  /** Type only: the child's result type. */
  readonly __result?: O;
}

/** `SpawnOptions` of `ctx.spawn`: the child is spawned in the parent's own transition, never in a `manager`'s. */
export type ChildSpawnOptions = Omit<SpawnOptions, 'manager'>;

export interface JoinOptions {
  /** Throw `TimeoutError` if the child is not terminal this long after the join first suspended. @default wait forever */
  timeoutMs?: number;
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
