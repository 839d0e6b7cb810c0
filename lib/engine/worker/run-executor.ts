import { EventTimeoutError } from '../../errors/event-timeout.error.js';
import { NonRetryableError } from '../../errors/non-retryable.error.js';
import { RetryAfterError } from '../../errors/retry-after.error.js';
import { SerializationError } from '../../errors/serialization.error.js';
import type { DurableTaskHandler } from '../../interfaces/task-context.interface.js';
import type { SpawnResolver } from '../context/claimed-run.js';
import { DurableTaskContext, type ClaimedRun } from '../context/task-context.js';
import { redact } from '../db/database-errors.js';
import type { Row, Store } from '../db/store.js';
import type { WorkerSettings } from '../options.js';
import type { HandlerRegistry } from '../registry/handler-registry.js';
import type { RunFence } from '../sql/statements.js';
import { toJson } from '../support/json.js';
import { timerMs } from '../support/wakeable.js';
import type { DurableLogger } from '../support/logger.js';
import { batchedWrites, type WriteFn } from './batched-writes.js';
import { describeError } from './describe-error.js';
import type { DurableWorkerMonitor, ExecutionOutcome, ObservedRun } from './worker-monitor.js';

/**
 * Executes one claimed run: finds its handler, gives it a context, and records its result or
 * error, unless the execution was stopped (suspended, cancelled, lease lost) on the way.
 */
export class RunExecutor {
  /** The handlers running now, by run id (a cancellation is announced by run id). */
  private readonly running = new Map<string, { run: ClaimedRun; ctx: DurableTaskContext }>();
  /**
   * Every run this worker executes now, from its claim until its outcome was recorded or given
   * up (and, when recording failed, until its lease has expired).
   */
  private readonly held = new Set<string>();
  private readonly write: WriteFn;

  constructor(
    private readonly store: Store,
    private readonly registry: HandlerRegistry,
    private readonly settings: WorkerSettings,
    private readonly logger: DurableLogger,
    private readonly monitor?: DurableWorkerMonitor,
    private readonly spawnRow?: SpawnResolver,
  ) {
    this.write = batchedWrites(store, settings.workerId);
  }

  /** A cancellation of this run arrived by NOTIFY: its handler stops at its next context call. */
  cancelled(runId: string): void {
    this.running.get(runId)?.ctx.cancelled();
  }

  /** The runs this worker is executing (what `release_runs` must keep). */
  heldRuns(): string[] {
    return [...this.held];
  }

  /**
   * The worker gives up on the handlers still running (after `shutdownTimeoutMs`): each is
   * stopped (its next context call throws instead of running anything), and the run of each one
   * that is not inside a step's function or a database call is put back without using an
   * attempt. The others keep their lease until it expires (a failed attempt, LeaseExpired).
   */
  async abandon(): Promise<{ released: number; left: number }> {
    const idle: ClaimedRun[] = [];
    for (const { run, ctx } of this.running.values()) {
      // Judged and stopped in one turn: nothing of the handler can start in between.
      if (ctx.idle && !ctx.stopReason) idle.push(run);
      ctx.stop('shutdown');
    }
    const outcomes = await Promise.allSettled(
      idle.map((run) => this.store.one(this.store.sql.defer(fenceOf(run, this.settings.workerId), 0, false))),
    );
    const released = outcomes.filter((outcome) => outcome.status === 'fulfilled' && outcome.value.outcome === 'ok').length;
    return { released, left: this.running.size - released };
  }

  /** `onSettled` is called once the handler has returned or thrown (its outcome is then being recorded). */
  async execute(run: ClaimedRun, onSettled?: () => void): Promise<void> {
    const ids = `task ${run.taskId} (${run.queue}/${run.taskName}, attempt ${run.attempt})`;
    const observed: ObservedRun = {
      taskId: run.taskId, runId: run.runId, workerId: this.settings.workerId, attempt: run.attempt, queue: run.queue, taskName: run.taskName,
      epoch: run.epoch, headers: run.headers,
    };
    let ended: ExecutionOutcome = 'unrecorded';
    this.held.add(run.runId);
    let keepFor = 0;
    try {
      const handler = this.registry.get(run.queue, run.taskName);
      if (!handler) return await this.deferUnknown(run, ids);
      this.monitor?.emit('onClaim', observed);
      const ctx = new DurableTaskContext(this.store, run, {
        workerId: this.settings.workerId,
        leaseMs: this.settings.leaseMs,
        maxPayloadBytes: this.settings.maxPayloadBytes,
        maxCheckpointBytesPerTask: this.settings.maxCheckpointBytesPerTask,
        write: this.write,
        spawnRow: this.spawnRow,
        onStep: this.monitor && ((step) => this.monitor!.emit('onStep', observed, step)),
        onStepReplayed: this.monitor && ((step) => this.monitor!.emit('onStepReplayed', observed, step)),
      });
      this.running.set(run.runId, { run, ctx });
      // Out of `running` as soon as the handler settled: its outcome is being recorded, not to be released.
      const settled = () => {
        this.running.delete(run.runId);
        onSettled?.();
      };
      const execute = () => this.runHandler(handler, run, ctx, observed, settled).finally(settled);
      const outcome = await (this.monitor ? this.monitor.around(observed, execute) : execute());
      ended = outcome === 'ok' ? (ctx.failed ? 'failed' : 'completed')
        : outcome === 'cancelled' || ctx.stopReason === 'cancelled' ? 'cancelled'
          : outcome === 'lost' || ctx.stopReason === 'lease-lost' ? 'lease-lost'
            : ctx.stopReason === 'suspended' ? 'suspended' : ctx.stopReason === 'shutdown' ? 'shutdown' : 'unrecorded';
      const lost = outcome === 'cancelled' || ctx.stopReason === 'cancelled' ? 'cancelled'
        : outcome === 'lost' || ctx.stopReason === 'lease-lost' ? 'lease-lost' : undefined;
      if (lost) this.monitor?.emit('onLeaseLost', observed, lost);
      if (outcome === 'cancelled' || outcome === 'lost') {
        this.logger.warn(`${ids}: outcome not recorded, the run was ${outcome === 'cancelled' ? 'cancelled' : 'taken over after its lease expired'}`);
      }
    } catch (error) {
      // Only a database failure gets here; the lease expires and another attempt runs. Until
      // then the run stays held: a write of it may have committed, so it is not released as new.
      this.logger.error(`${ids}: could not record the outcome: ${redact(describeError(error).message)}`);
      keepFor = this.settings.leaseMs;
    } finally {
      if (this.registry.get(run.queue, run.taskName)) this.monitor?.emit('onEnd', observed, ended);
      if (keepFor === 0) this.held.delete(run.runId);
      else setTimeout(() => this.held.delete(run.runId), timerMs(keepFor)).unref();
    }
  }

  /** Runs the handler and records its result or error, unless the execution was stopped. */
  private async runHandler(
    handler: DurableTaskHandler, run: ClaimedRun, ctx: DurableTaskContext, observed: ObservedRun, settled: () => void,
  ): Promise<string | undefined> {
    const fail = async (error: unknown) => {
      await ctx.flushProgress();
      const statement = this.store.sql.fail(fenceOf(run, this.settings.workerId), JSON.stringify(withRetryAfter(describeError(error), error)), isFinal(error));
      const outcome = (await this.store.one(statement)).outcome as string;
      if (outcome === 'ok') {
        ctx.failed = true;
        this.monitor?.emit('onFailure', observed, error);
      }
      return outcome;
    };
    const startedAt = Date.now();
    let result: unknown;
    try {
      result = await handler.run(run.params, ctx);
    } catch (error) {
      settled();
      return ctx.stopReason ? undefined : fail(error);
    }
    settled();
    if (ctx.stopReason) return undefined;
    await ctx.flushProgress();
    if (ctx.stopReason) return undefined;
    let json;
    try {
      json = toJson(result, `the result of task "${run.taskName}"`, this.settings.maxPayloadBytes);
    } catch (error) {
      return fail(error);
    }
    const outcome = await this.write({
      kind: 'complete', taskId: run.taskId, runId: run.runId, epoch: run.epoch, value: json.text,
      attempt: run.attempt, leaseMs: this.settings.leaseMs,
    });
    if (outcome === 'ok') this.monitor?.emit('onComplete', observed, Date.now() - startedAt);
    return outcome;
  }

  private async deferUnknown(run: ClaimedRun, ids: string): Promise<void> {
    const { unknownTaskDelayMs } = this.settings;
    const delayMs = unknownTaskDelayMs + Math.floor(Math.random() * unknownTaskDelayMs);
    this.logger.warn(`${ids}: no handler in this process for "${run.taskName}" on queue "${run.queue}"; put back for ${delayMs} ms without using an attempt`);
    await this.store.one(this.store.sql.defer(fenceOf(run, this.settings.workerId), delayMs, run.firstStart));
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
    epoch: row.epoch as number,
    firstStart: row.first_start as boolean,
    checkpointBytes: Number(row.checkpoint_bytes),
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
  return { taskId: run.taskId, runId: run.runId, workerId, epoch: run.epoch };
}

function isFinal(error: unknown): boolean {
  return error instanceof NonRetryableError || error instanceof EventTimeoutError || error instanceof SerializationError;
}

/** A RetryAfterError's time goes with the recorded error: `_fail` starts the next attempt no earlier. */
function withRetryAfter(described: object, error: unknown): object {
  if (!(error instanceof RetryAfterError)) return described;
  return error.retryAt ? { ...described, retryAt: error.retryAt.toISOString() } : { ...described, retryAfterMs: error.retryAfterMs };
}
