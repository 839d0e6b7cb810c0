import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { AwaitEventOptions, ChildSpawnOptions, JoinOptions, TaskContext, TaskHandle } from '../../interfaces/task-context.interface.js';
import { joinAll, joinAny, joinOne } from '../children/joins.js';
import { spawnChild } from '../children/spawn-child.js';
import type { Store } from '../db/store.js';
import type { TaskHandlerClass } from '../registry/task-metadata.js';
import type { RunFence } from '../sql/statements.js';
import { toJson } from '../support/json.js';
import { assertDate, assertDuration, assertName, storableDate } from '../support/validation.js';
import { CheckpointBudget } from './checkpoint-cap.js';
import { CheckpointNames } from './checkpoint-names.js';
import type { ClaimedRun, ContextSettings } from './claimed-run.js';
import { ControlSignal, type StopReason } from './control-signal.js';
import { recordedNow, recordedRandom, recordedUuid } from './deterministic.js';
import type { ExecutionCore } from './execution-core.js';
import { assertNotInStep, inStep } from './step-scope.js';
import { awaitEvent, emitEvent, sleep } from './suspensions.js';
import { ProgressWriter } from '../watch/progress-writer.js';

export type { ClaimedRun, ContextSettings };

/**
 * The `ctx` of one execution; its checkpoints are named by `CheckpointNames`. Sleeps and event
 * waits live in `suspensions.ts`, deterministic values in `deterministic.ts`, child tasks and
 * joins in `lib/engine/children/`, all written against `ExecutionCore`, which this implements.
 */
export class DurableTaskContext implements TaskContext, ExecutionCore {
  readonly taskId: string;
  readonly runId: string;
  readonly attempt: number;
  readonly taskName: string;
  readonly queue: string;
  readonly headers: Readonly<Record<string, unknown>>;

  private stopped: StopReason | undefined;
  /** @internal The worker recorded this execution's failure (for observers). */
  failed = false;
  private suspending = false;
  /** Step functions and database calls of this execution in flight. */
  private busy = 0;
  readonly names = new CheckpointNames();
  readonly fence: RunFence;
  readonly budget: CheckpointBudget;
  readonly claimedAtLocal = performance.now();
  private readonly progress: ProgressWriter;

  constructor(readonly store: Store, readonly run: ClaimedRun, readonly settings: ContextSettings) {
    this.taskId = run.taskId;
    this.runId = run.runId;
    this.attempt = run.attempt;
    this.taskName = run.taskName;
    this.queue = run.queue;
    this.headers = Object.freeze({ ...run.headers });
    this.fence = { taskId: run.taskId, runId: run.runId, workerId: settings.workerId, epoch: run.epoch };
    this.budget = new CheckpointBudget(run.checkpointBytes, settings.maxCheckpointBytesPerTask);
    this.progress = new ProgressWriter(
      settings.write,
      { taskId: run.taskId, runId: run.runId, epoch: run.epoch, attempt: run.attempt, leaseMs: settings.leaseMs },
      (outcome) => this.settle(outcome),
    );
  }

  /** Why this execution stopped, or undefined while it may go on. */
  get stopReason(): StopReason | undefined {
    return this.stopped;
  }

  /** Whether no step function and no database call of this execution is in flight. */
  get idle(): boolean {
    return this.busy === 0;
  }

  /** The task was cancelled elsewhere: stop at the next context call. */
  cancelled(): void {
    this.stop('cancelled');
  }

  /** Stops this execution: every later context call throws the control signal. */
  stop(reason: StopReason): void {
    this.stopped ??= reason;
  }

  async step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    this.ensureActive('step');
    assertName(name, 'step name');
    const key = this.names.next('step', name);
    if (this.run.checkpoints.has(key)) {
      this.settings.onStepReplayed?.({ name });
      return this.run.checkpoints.get(key) as T;
    }
    return this.track(async () => {
      const startedAt = Date.now();
      const value = await inStep(this, name, fn);
      this.ensureActive();
      const json = toJson<T>(value, `the result of step "${name}"`, this.settings.maxPayloadBytes);
      this.budget.take(name, json.text);
      const outcome = await this.settings.write({
        kind: 'checkpoint', taskId: this.taskId, runId: this.runId, epoch: this.fence.epoch, name: key, value: json.text,
        attempt: this.attempt, leaseMs: this.settings.leaseMs,
      });
      // 'exists': a checkpoint of this name was committed first; it stays, and is the step's value.
      const stored = outcome === 'exists' ? await this.stored<T>(key, json.value) : (this.settle(outcome), json.value);
      this.run.checkpoints.set(key, stored);
      this.settings.onStep?.({ name, durationMs: Date.now() - startedAt });
      return stored;
    });
  }

  /**
   * Not a checkpoint: coalesced and sent with the worker's next batch of writes (see
   * ProgressWriter). Throws at once for a value that is not JSON or a stopped execution; the
   * returned promise (which need not be awaited) settles when the value is stored or refused.
   */
  setProgress(value: unknown): Promise<void> {
    this.ensureActive();
    const json = toJson(value, 'the progress value', this.settings.maxPayloadBytes);
    const stored = this.progress.set(json.text ?? 'null');
    stored.catch(() => undefined); // the caller may not await it: a refusal also stops the execution
    return stored;
  }

  /** Waits for the progress values set so far to be written (before the run's outcome or a suspension). */
  flushProgress(): Promise<void> {
    return this.progress.flush();
  }

  async sleepFor(name: string, ms: number): Promise<void> {
    this.ensureActive('sleepFor');
    assertDuration(ms, 'sleepFor duration');
    return sleep(this, name, null, ms);
  }

  async sleepUntil(name: string, date: Date): Promise<void> {
    this.ensureActive('sleepUntil');
    assertDate(date, 'sleepUntil date');
    return sleep(this, name, storableDate(date), null);
  }

  async awaitEvent<T = unknown>(eventName: string, options: AwaitEventOptions = {}): Promise<T> {
    this.ensureActive('awaitEvent');
    return awaitEvent<T>(this, eventName, options);
  }

  emitEvent(eventName: string, payload?: unknown): Promise<void> {
    this.ensureActive('emitEvent');
    return emitEvent(this, eventName, payload);
  }

  async heartbeat(extendMs?: number): Promise<void> {
    this.ensureActive();
    if (extendMs !== undefined) assertDuration(extendMs, 'heartbeat extendMs', true);
    const row = await this.track(() => this.store.one(this.store.sql.heartbeat(this.fence, extendMs ?? this.settings.leaseMs)));
    this.settle(row.outcome as string);
  }

  spawn<O>(stepName: string, task: string | TaskHandlerClass, params?: unknown, options?: ChildSpawnOptions): Promise<TaskHandle<O>> {
    return spawnChild<O>(this, stepName, task, params, options);
  }

  join<O>(handle: TaskHandle<O>, options?: JoinOptions): Promise<O> {
    return joinOne(this, handle, options);
  }

  joinAll<O>(handles: readonly TaskHandle<O>[]): Promise<O[]> {
    return joinAll(this, handles);
  }

  joinAny<O>(handles: readonly TaskHandle<O>[]): Promise<{ index: number; result: O }> {
    return joinAny(this, handles);
  }

  now(): Promise<Date> {
    return recordedNow(this);
  }

  random(): Promise<number> {
    return recordedRandom(this);
  }

  uuid(): Promise<string> {
    return recordedUuid(this);
  }

  /** At most one call that may suspend is in flight, so two sleeps cannot race for the run. */
  async suspendable<R>(call: () => Promise<R>): Promise<R> {
    if (this.suspending) {
      throw new InvalidArgumentError('sleepFor, sleepUntil, awaitEvent, join, joinAll and joinAny cannot run concurrently in one task; await one before starting the next');
    }
    this.suspending = true;
    try {
      await this.progress.flush();
      return await this.track(call);
    } finally {
      this.suspending = false;
    }
  }

  /** Counts `call` as in flight (see `idle`). */
  async track<R>(call: () => Promise<R>): Promise<R> {
    this.busy += 1;
    try {
      return await call();
    } finally {
      this.busy -= 1;
    }
  }

  /** The committed checkpoint `key` (`fallback` if it is gone: cleaned up meanwhile). */
  async stored<T>(key: string, fallback: T): Promise<T> {
    const row = await this.store.query(this.store.sql.readCheckpoint(this.taskId, key));
    if (row.length === 0) return fallback;
    return (row[0].is_null ? undefined : row[0].value) as T;
  }

  /** Turns a transition's outcome into a return (when it is `ok`) or a stop. */
  settle(outcome: string, proceed = 'ok'): void {
    if (outcome === proceed) return;
    this.stopped ??= outcome === 'suspended' || outcome === 'cancelled' ? outcome : 'lease-lost';
    throw new ControlSignal(this.stopped);
  }

  /** Throws the control signal once stopped; `call`: refused from inside a step's function too. */
  ensureActive(call?: string): void {
    if (this.stopped) throw new ControlSignal(this.stopped);
    if (call) assertNotInStep(this, call);
  }
}
