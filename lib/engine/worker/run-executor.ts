import { EventTimeoutError } from '../../errors/event-timeout.error.js';
import { NonRetryableError } from '../../errors/non-retryable.error.js';
import { SerializationError } from '../../errors/serialization.error.js';
import type { DurableTaskHandler } from '../../interfaces/task-context.interface.js';
import { DurableTaskContext, type ClaimedRun } from '../context/task-context.js';
import { isError, redact } from '../db/database-errors.js';
import type { Row, Store } from '../db/store.js';
import type { WorkerSettings } from '../options.js';
import type { HandlerRegistry } from '../registry/handler-registry.js';
import type { RunFence } from '../sql/statements.js';
import { toJson } from '../support/json.js';
import type { DurableLogger } from '../support/logger.js';
import { batchedWrites, type WriteFn } from './batched-writes.js';
import type { DurableWorkerMonitor, ObservedRun } from './worker-monitor.js';

/**
 * Executes one claimed run: finds its handler, gives it a context, and records its result or
 * error, unless the execution was stopped (suspended, cancelled, lease lost) on the way.
 */
export class RunExecutor {
  /** The contexts of the handlers running now, by task id. */
  private readonly running = new Map<string, DurableTaskContext>();
  private readonly write: WriteFn;

  constructor(
    private readonly store: Store,
    private readonly registry: HandlerRegistry,
    private readonly settings: WorkerSettings,
    private readonly logger: DurableLogger,
    private readonly monitor?: DurableWorkerMonitor,
  ) {
    this.write = batchedWrites(store, settings.workerId);
  }

  /** A cancellation arrived by NOTIFY: the handler stops at its next context call. */
  cancelled(taskId: string): void {
    this.running.get(taskId)?.cancelled();
  }

  async execute(run: ClaimedRun): Promise<void> {
    const ids = `task ${run.taskId} (${run.queue}/${run.taskName}, attempt ${run.attempt})`;
    const observed: ObservedRun = { ...fenceOf(run, this.settings.workerId), attempt: run.attempt, queue: run.queue, taskName: run.taskName };
    try {
      const handler = this.registry.get(run.queue, run.taskName);
      if (!handler) return await this.deferUnknown(run, ids);
      this.monitor?.emit('onClaim', observed);
      const ctx = new DurableTaskContext(this.store, run, {
        workerId: this.settings.workerId,
        leaseMs: this.settings.leaseMs,
        maxPayloadBytes: this.settings.maxPayloadBytes,
        write: this.write,
        onStep: this.monitor && ((step) => this.monitor!.emit('onStep', observed, step)),
      });
      this.running.set(run.taskId, ctx);
      const outcome = await this.runHandler(handler, run, ctx, observed).finally(() => this.running.delete(run.taskId));
      const lost = outcome === 'cancelled' || ctx.stopReason === 'cancelled' ? 'cancelled'
        : outcome === 'lost' || ctx.stopReason === 'lease-lost' ? 'lease-lost' : undefined;
      if (lost) this.monitor?.emit('onLeaseLost', observed, lost);
      if (outcome === 'cancelled' || outcome === 'lost') {
        this.logger.warn(`${ids}: outcome not recorded, the run was ${outcome === 'cancelled' ? 'cancelled' : 'taken over after its lease expired'}`);
      }
    } catch (error) {
      // Only a database failure gets here; the lease expires and another attempt runs.
      this.logger.error(`${ids}: could not record the outcome: ${redact((error as Error).message)}`);
    }
  }

  /** Runs the handler and records its result or error, unless the execution was stopped. */
  private async runHandler(handler: DurableTaskHandler, run: ClaimedRun, ctx: DurableTaskContext, observed: ObservedRun): Promise<string | undefined> {
    const fail = async (error: unknown) => {
      const statement = this.store.sql.fail(fenceOf(run, this.settings.workerId), JSON.stringify(describeError(error)), isFinal(error));
      const outcome = (await this.store.one(statement)).outcome as string;
      if (outcome === 'ok') this.monitor?.emit('onFailure', observed, error);
      return outcome;
    };
    const startedAt = Date.now();
    let result: unknown;
    try {
      result = await handler.run(run.params, ctx);
    } catch (error) {
      return ctx.stopReason ? undefined : fail(error);
    }
    if (ctx.stopReason) return undefined;
    let json;
    try {
      json = toJson(result, `the result of task "${run.taskName}"`, this.settings.maxPayloadBytes);
    } catch (error) {
      return fail(error);
    }
    const outcome = await this.write({
      kind: 'complete', taskId: run.taskId, runId: run.runId, value: json.text,
      attempt: run.attempt, leaseMs: this.settings.leaseMs,
    });
    if (outcome === 'ok') this.monitor?.emit('onComplete', observed, Date.now() - startedAt);
    return outcome;
  }

  private async deferUnknown(run: ClaimedRun, ids: string): Promise<void> {
    const { unknownTaskDelayMs } = this.settings;
    const delayMs = unknownTaskDelayMs + Math.floor(Math.random() * unknownTaskDelayMs);
    this.logger.warn(`${ids}: no handler in this process for "${run.taskName}" on queue "${run.queue}"; put back for ${delayMs} ms without using an attempt`);
    await this.store.one(this.store.sql.defer(fenceOf(run, this.settings.workerId), delayMs));
  }
}

/** A claim query's row as the run the handler replays. */
export function toClaimedRun(row: Row): ClaimedRun {
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

function fenceOf(run: ClaimedRun, workerId: string): RunFence {
  return { taskId: run.taskId, runId: run.runId, workerId };
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
