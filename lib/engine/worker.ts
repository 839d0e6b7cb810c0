import { EventTimeoutError } from '../errors/event-timeout.error.js';
import { NonRetryableError } from '../errors/non-retryable.error.js';
import { SerializationError } from '../errors/serialization.error.js';
import type { DurableTaskHandler } from '../interfaces/task-context.interface.js';
import { timerMs, Wakeable } from './abortable-delay.js';
import { isError, redact } from './database-errors.js';
import { toJson } from './json.js';
import type { DurableLogger } from './logger.js';
import type { Notifier } from './notifier.js';
import type { Row, Store } from './store.js';
import { DurableTaskContext, type ClaimedRun } from './task-context.js';
import { batchedWrites, type WriteFn } from './worker-writes.js';

export interface ResolvedWorkerOptions {
  queues: string[];
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  shutdownTimeoutMs: number;
  workerId: string;
  unknownTaskDelayMs: number;
  maxPayloadBytes: number;
}

/** Handlers by queue, then task name. */
export type HandlerRegistry = Map<string, Map<string, DurableTaskHandler>>;

type WorkerState = 'created' | 'running' | 'stopping' | 'stopped';

const SWEEP_EVERY_MS = 100;

/**
 * Claims runs and executes their handlers, at most `concurrency` at once. It polls, and a
 * NOTIFY, a finished handler or the next due run wakes it early. Database errors are logged
 * and retried with backoff: the loop never dies while the worker is running.
 */
export class Worker {
  private state: WorkerState = 'created';
  private loop: Promise<void> | undefined;
  private readonly active = new Set<Promise<void>>();
  /** The contexts of the handlers running now, by task id. */
  private readonly running = new Map<string, DurableTaskContext>();
  private readonly wakeable = new Wakeable();
  private unsubscribe: (() => void) | undefined;
  private readonly write: WriteFn;
  private sweptAt = 0;

  constructor(
    private readonly store: Store,
    private readonly handlers: HandlerRegistry,
    private readonly options: ResolvedWorkerOptions,
    private readonly logger: DurableLogger,
    private readonly notifier?: Notifier,
  ) {
    this.write = batchedWrites(store, options.workerId);
  }

  start(): void {
    if (this.state !== 'created') return;
    this.state = 'running';
    const { wakeup, cancel } = this.store.sql.channels;
    this.unsubscribe = this.notifier?.subscribe((notification) => {
      if (notification?.channel === cancel) this.running.get(notification.payload)?.cancelled();
      else if (!notification || (notification.channel === wakeup && this.options.queues.includes(notification.payload))) {
        this.wakeable.wake();
      }
    });
    this.loop = this.run();
  }

  /** Stops claiming, waits up to `shutdownTimeoutMs` for running handlers, then returns. */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    this.wakeable.wake();
    await this.loop;
    if (this.active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timerMs(this.options.shutdownTimeoutMs));
      });
      const outcome = await Promise.race([Promise.allSettled([...this.active]), timeout]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        this.logger.warn(`${this.active.size} task(s) still running after shutdownTimeoutMs; their leases will expire and another worker will retry them`);
      }
    }
    // Only now: a cancellation must still reach the handlers that are draining.
    this.unsubscribe?.();
    this.state = 'stopped';
  }

  /** How many handlers are executing now. */
  get inFlight(): number {
    return this.active.size;
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    while (this.state === 'running') {
      let waitMs = this.options.pollIntervalMs;
      const free = this.options.concurrency - this.active.size;
      if (free > 0) {
        try {
          // Sweeping expired leases and policies at most every SWEEP_EVERY_MS keeps busy claims lean.
          const sweep = Date.now() - this.sweptAt >= SWEEP_EVERY_MS;
          const rows = await this.store.query(this.store.sql.claim, [
            this.options.queues, this.options.workerId, free, this.options.leaseMs, sweep,
          ]);
          if (sweep) this.sweptAt = Date.now();
          backoffMs = 0;
          let claimed = 0;
          for (const row of rows) {
            if (row.run_id === null) {
              waitMs = nextWait(row, this.options.pollIntervalMs);
            } else {
              claimed += 1;
              this.track(this.execute(toClaimedRun(row)));
            }
          }
          if (claimed === free) continue;
        } catch (error) {
          backoffMs = Math.min(Math.max(backoffMs * 2, 100), 10_000);
          this.logger.error(`claiming failed, retrying in ${backoffMs} ms: ${redact((error as Error).message)}`);
          waitMs = backoffMs;
        }
      }
      if (this.state !== 'running') break;
      await this.wakeable.wait(waitMs);
    }
  }

  private track(execution: Promise<void>): void {
    this.active.add(execution);
    void execution.finally(() => {
      this.active.delete(execution);
      this.wakeable.wake();
    });
  }

  private async execute(run: ClaimedRun): Promise<void> {
    const ids = `task ${run.taskId} (${run.queue}/${run.taskName}, attempt ${run.attempt})`;
    try {
      const handler = this.handlers.get(run.queue)?.get(run.taskName);
      if (!handler) return await this.deferUnknown(run, ids);
      const ctx = new DurableTaskContext(this.store, run, {
        workerId: this.options.workerId,
        leaseMs: this.options.leaseMs,
        maxPayloadBytes: this.options.maxPayloadBytes,
        write: this.write,
      });
      this.running.set(run.taskId, ctx);
      const outcome = await this.runHandler(handler, run, ctx).finally(() => this.running.delete(run.taskId));
      if (outcome === 'cancelled' || outcome === 'lost') {
        this.logger.warn(`${ids}: outcome not recorded, the run was ${outcome === 'cancelled' ? 'cancelled' : 'taken over after its lease expired'}`);
      }
    } catch (error) {
      // Only a database failure gets here; the lease expires and another attempt runs.
      this.logger.error(`${ids}: could not record the outcome: ${redact((error as Error).message)}`);
    }
  }

  /** Runs the handler and records its result or error, unless the execution was stopped. */
  private async runHandler(handler: DurableTaskHandler, run: ClaimedRun, ctx: DurableTaskContext): Promise<string | undefined> {
    const fail = (error: unknown) => this.transition(this.store.sql.fail, [
      run.taskId, run.runId, this.options.workerId, JSON.stringify(describeError(error)), isFinal(error),
    ]);
    let result: unknown;
    try {
      result = await handler.run(run.params, ctx);
    } catch (error) {
      return ctx.stopReason ? undefined : fail(error);
    }
    if (ctx.stopReason) return undefined;
    let json;
    try {
      json = toJson(result, `the result of task "${run.taskName}"`, this.options.maxPayloadBytes);
    } catch (error) {
      return fail(error);
    }
    return this.write({
      kind: 'complete', taskId: run.taskId, runId: run.runId, value: json.text,
      attempt: run.attempt, leaseMs: this.options.leaseMs,
    });
  }

  private async deferUnknown(run: ClaimedRun, ids: string): Promise<void> {
    const jitterMs = Math.floor(Math.random() * this.options.unknownTaskDelayMs);
    this.logger.warn(`${ids}: no handler in this process for "${run.taskName}" on queue "${run.queue}"; put back for ${this.options.unknownTaskDelayMs + jitterMs} ms without using an attempt`);
    await this.transition(this.store.sql.defer, [run.taskId, run.runId, this.options.workerId, this.options.unknownTaskDelayMs + jitterMs]);
  }

  private async transition(statement: string, values: unknown[]): Promise<string> {
    return (await this.store.one(statement, values)).outcome as string;
  }
}

function toClaimedRun(row: Row): ClaimedRun {
  const checkpoints = new Map<string, unknown>();
  for (const [name, value, isUndefined] of row.checkpoints as [string, unknown, boolean][]) {
    checkpoints.set(name, isUndefined ? undefined : value);
  }
  return {
    taskId: row.task_id as string,
    runId: row.run_id as string,
    attempt: row.attempt as number,
    queue: row.queue as string,
    taskName: row.name as string,
    params: row.params,
    headers: row.headers as Record<string, unknown>,
    checkpoints,
    claimedAt: row.db_now as Date,
  };
}

/** Until the next due run, but never longer than the poll interval. */
function nextWait(row: Row, pollIntervalMs: number): number {
  const due = row.next_due_at as Date | null;
  if (!due) return pollIntervalMs;
  // Due already but not claimed: another worker holds it, so look again shortly.
  return Math.min(pollIntervalMs, Math.max(due.getTime() - (row.db_now as Date).getTime(), 5));
}

function isFinal(error: unknown): boolean {
  return error instanceof NonRetryableError || error instanceof EventTimeoutError || error instanceof SerializationError;
}

/** `{ name, message, stack }`, made storable: any text can end up in an error message. */
function describeError(error: unknown): Record<string, string> {
  const storable = (text: string) => text.toWellFormed().replaceAll('\u0000', '\\u0000');
  if (isError(error)) {
    return {
      name: storable(error.name),
      message: storable(error.message),
      ...(error.stack ? { stack: storable(error.stack) } : {}),
    };
  }
  return { name: 'Error', message: storable(String(error)) };
}
