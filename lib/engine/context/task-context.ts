import { EventTimeoutError } from '../../errors/event-timeout.error.js';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { AwaitEventOptions, TaskContext } from '../../interfaces/task-context.interface.js';
import type { Store } from '../db/store.js';
import type { RunFence, WorkerWrite } from '../sql/statements.js';
import { toJson } from '../support/json.js';
import { assertDate, assertDuration, assertName, storableDate } from '../support/validation.js';
import { CheckpointNames } from './checkpoint-names.js';
import { ControlSignal, type StopReason } from './control-signal.js';

/** What the worker claimed: one run and everything its handler needs to replay. */
export interface ClaimedRun {
  taskId: string;
  runId: string;
  attempt: number;
  queue: string;
  taskName: string;
  params: unknown;
  headers: Record<string, unknown>;
  /** Checkpoint name to stored value (`undefined` for a step that returned nothing). */
  checkpoints: Map<string, unknown>;
  /** The database clock when the run was claimed. */
  claimedAt: Date;
}

export interface ContextSettings {
  workerId: string;
  leaseMs: number;
  maxPayloadBytes: number;
  /** Where checkpoints go: batched with the other handlers' writes. */
  write: (write: WorkerWrite) => Promise<string>;
  /** Told after each step's checkpoint is written. */
  onStep?: (step: { name: string; durationMs: number }) => void;
}

type EventOutcome = { payload: unknown } | { timedOut: true };

/** The `ctx` of one execution; its checkpoints are named by `CheckpointNames`. */
export class DurableTaskContext implements TaskContext {
  readonly taskId: string;
  readonly runId: string;
  readonly attempt: number;
  readonly taskName: string;
  readonly queue: string;
  readonly headers: Readonly<Record<string, unknown>>;

  private stopped: StopReason | undefined;
  private suspending = false;
  private readonly names = new CheckpointNames();
  private readonly fence: RunFence;

  constructor(
    private readonly store: Store,
    private readonly run: ClaimedRun,
    private readonly settings: ContextSettings,
  ) {
    this.taskId = run.taskId;
    this.runId = run.runId;
    this.attempt = run.attempt;
    this.taskName = run.taskName;
    this.queue = run.queue;
    this.headers = Object.freeze({ ...run.headers });
    this.fence = { taskId: run.taskId, runId: run.runId, workerId: settings.workerId };
  }

  /** Why this execution stopped, or undefined while it may go on. */
  get stopReason(): StopReason | undefined {
    return this.stopped;
  }

  /** The task was cancelled elsewhere: stop at the next context call. */
  cancelled(): void {
    this.stopped ??= 'cancelled';
  }

  async step<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    this.ensureActive();
    assertName(name, 'step name');
    const key = this.names.next('step', name);
    if (this.run.checkpoints.has(key)) return this.run.checkpoints.get(key) as T;
    const startedAt = Date.now();
    const value = await fn();
    this.ensureActive();
    const json = toJson<T>(value, `the result of step "${name}"`, this.settings.maxPayloadBytes);
    const outcome = await this.settings.write({
      kind: 'checkpoint', taskId: this.taskId, runId: this.runId, name: key, value: json.text,
      attempt: this.attempt, leaseMs: this.settings.leaseMs,
    });
    this.settle(outcome);
    this.run.checkpoints.set(key, json.value);
    this.settings.onStep?.({ name, durationMs: Date.now() - startedAt });
    return json.value;
  }

  async sleepFor(name: string, ms: number): Promise<void> {
    this.ensureActive();
    assertDuration(ms, 'sleepFor duration');
    return this.sleep(name, null, ms);
  }

  async sleepUntil(name: string, date: Date): Promise<void> {
    this.ensureActive();
    assertDate(date, 'sleepUntil date');
    return this.sleep(name, storableDate(date), null);
  }

  async awaitEvent<T = unknown>(eventName: string, options: AwaitEventOptions = {}): Promise<T> {
    this.ensureActive();
    assertName(eventName, 'event name');
    if (options.timeoutMs !== undefined) assertDuration(options.timeoutMs, 'awaitEvent timeoutMs');
    if (options.stepName !== undefined) assertName(options.stepName, 'awaitEvent stepName');
    const key = this.names.next('event', options.stepName ?? eventName);
    let outcome = this.run.checkpoints.get(key) as EventOutcome | undefined;
    if (!outcome) {
      const row = await this.suspendable(() =>
        this.store.one(this.store.sql.awaitEvent(this.fence, {
          queue: this.queue, eventName, key, timeoutMs: options.timeoutMs ?? null,
          attempt: this.attempt, leaseMs: this.settings.leaseMs,
        })),
      );
      this.settle(row.outcome as string, 'checkpoint');
      outcome = row.value as EventOutcome;
      this.run.checkpoints.set(key, outcome);
    }
    if ('timedOut' in outcome) throw new EventTimeoutError(eventName);
    return outcome.payload as T;
  }

  async emitEvent(eventName: string, payload?: unknown): Promise<void> {
    this.ensureActive();
    assertName(eventName, 'event name');
    const key = this.names.next('emit', eventName);
    if (this.run.checkpoints.has(key)) return;
    const json = toJson(payload ?? null, `the payload of event "${eventName}"`, this.settings.maxPayloadBytes);
    const row = await this.store.one(this.store.sql.emitFromTask(this.fence, {
      key, queue: this.queue, eventName, payload: json.text ?? 'null', attempt: this.attempt, leaseMs: this.settings.leaseMs,
    }));
    this.settle(row.outcome as string);
    this.run.checkpoints.set(key, { emitted: true });
  }

  async heartbeat(extendMs?: number): Promise<void> {
    this.ensureActive();
    if (extendMs !== undefined) assertDuration(extendMs, 'heartbeat extendMs', true);
    const row = await this.store.one(this.store.sql.heartbeat(this.fence, extendMs ?? this.settings.leaseMs));
    this.settle(row.outcome as string);
  }

  private async sleep(name: string, until: Date | null, ms: number | null): Promise<void> {
    assertName(name, 'sleep name');
    const key = this.names.next('sleep', name);
    const stored = this.run.checkpoints.get(key) as { wakeAt: string } | undefined;
    // A sleep that was already due when this run was claimed returns without a round trip.
    if (stored && new Date(stored.wakeAt) <= this.run.claimedAt) return;
    const row = await this.suspendable(() =>
      this.store.one(this.store.sql.sleep(this.fence, {
        key, wakeAt: until, durationMs: ms, attempt: this.attempt, leaseMs: this.settings.leaseMs,
      })),
    );
    this.settle(row.outcome as string, 'continue');
    this.run.checkpoints.set(key, { wakeAt: (row.wake_at as Date).toISOString() });
  }

  /** At most one call that may suspend is in flight, so two sleeps cannot race for the run. */
  private async suspendable<R>(call: () => Promise<R>): Promise<R> {
    if (this.suspending) {
      throw new InvalidArgumentError('sleepFor, sleepUntil and awaitEvent cannot run concurrently in one task; await one before starting the next');
    }
    this.suspending = true;
    try {
      return await call();
    } finally {
      this.suspending = false;
    }
  }

  /** Turns a transition's outcome into a return (when it is `ok`) or a stop. */
  private settle(outcome: string, proceed = 'ok'): void {
    if (outcome === proceed) return;
    this.stopped = outcome === 'suspended' || outcome === 'cancelled' ? outcome : 'lease-lost';
    throw new ControlSignal(this.stopped);
  }

  private ensureActive(): void {
    if (this.stopped) throw new ControlSignal(this.stopped);
  }
}
