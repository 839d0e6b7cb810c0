import { Inject, Injectable, Optional } from '@nestjs/common';
import { DurableClient } from '../engine/client/durable-client.js';
import { redact } from '../engine/db/database-errors.js';
import { timerMs } from '../engine/support/wakeable.js';
import { DurableWorkerMonitor, type WorkerStatus } from '../engine/worker/worker-monitor.js';
import type { QueueStats } from '../interfaces/task-snapshot.interface.js';

/** Options of `DurableHealthIndicator.isHealthy`; defaults for every call through `DURABLE_HEALTH_OPTIONS`. */
export interface DurableHealthOptions {
  /**
   * Down when the worker loop has not claimed or polled for this long (unless every slot is
   * busy: a full worker does not poll). @default 30000
   */
  maxPollAgeMs?: number;
  /** Down when a queue's oldest due pending task has waited longer than this. @default no limit */
  maxOldestPendingAgeMs?: number;
  /** The queues whose figures are reported and checked. @default the worker's queues (every queue without a worker) */
  queues?: string[];
  /** Down when the database has not answered within this long. @default 5000 */
  timeoutMs?: number;
}

/** The injection token of the default `DurableHealthOptions` (optional). */
export const DURABLE_HEALTH_OPTIONS = Symbol('DURABLE_HEALTH_OPTIONS');

/** What the indicator reports under its key, besides `status`. */
export interface DurableHealthData {
  [key: string]: unknown;
  /** Why it is down (absent when up). */
  message?: string;
  worker: { state: WorkerStatus['state']; inFlight: number; concurrency: number; lastClaimAgeMs: number | null; lastError?: string };
  queues: QueueStats[];
}

/** A terminus `HealthIndicatorResult`: `{ [key]: { status, ...data } }`. */
export type DurableHealthResult<Key extends string = string> = Record<Key, { status: 'up' | 'down' } & DurableHealthData>;

/**
 * A health indicator for `@nestjs/terminus` (`HealthCheckService.check([() => indicator.isHealthy()])`):
 * up when the database answers and this process's worker loop is alive (it claimed or polled
 * recently), and, when `maxOldestPendingAgeMs` is set, no queue's oldest due pending task has
 * waited longer. A process without a worker (`worker: false`) is judged on the database alone.
 * The result carries the figures: the worker's status and `client.stats()` of its queues.
 *
 * It returns terminus's result shape (a `down` result fails the check, as terminus 10.1+'s
 * `HealthIndicatorService` results do) without importing terminus, so the package loads
 * without that optional peer. DurableModule provides it: inject it in a health controller.
 */
@Injectable()
export class DurableHealthIndicator {
  constructor(
    @Inject(DurableClient) private readonly client: DurableClient,
    @Inject(DurableWorkerMonitor) private readonly monitor: DurableWorkerMonitor,
    @Optional() @Inject(DURABLE_HEALTH_OPTIONS) private readonly defaults: DurableHealthOptions = {},
  ) {}

  async isHealthy<const Key extends string = 'durable'>(key: Key = 'durable' as Key, options: DurableHealthOptions = {}): Promise<DurableHealthResult<Key>> {
    const { maxPollAgeMs = 30_000, maxOldestPendingAgeMs, queues, timeoutMs = 5000 } = { ...this.defaults, ...options };
    const status = this.monitor.status();
    const lastClaimAgeMs = status.lastClaimAt ? Date.now() - status.lastClaimAt.getTime() : null;
    const worker: DurableHealthData['worker'] = {
      state: status.state, inFlight: status.inFlight, concurrency: status.concurrency, lastClaimAgeMs,
      ...(status.lastError ? { lastError: redact(status.lastError.message) } : {}),
    };
    const result = (up: boolean, data: DurableHealthData) => ({ [key]: { status: up ? 'up' : 'down', ...data } }) as DurableHealthResult<Key>;
    let stats: QueueStats[];
    try {
      stats = await withTimeout(this.client.stats(), timeoutMs);
    } catch (error) {
      return result(false, { message: `the database did not answer: ${redact((error as Error).message)}`, worker, queues: [] });
    }
    const watched = queues ?? (status.state === 'none' ? undefined : status.queues);
    const figures = watched ? watched.map((queue) => stats.find((s) => s.queue === queue) ?? emptyQueue(queue)) : stats;
    const problem = workerProblem(status, lastClaimAgeMs, maxPollAgeMs) ?? lagProblem(figures, maxOldestPendingAgeMs);
    return problem ? result(false, { message: problem, worker, queues: figures }) : result(true, { worker, queues: figures });
  }
}

function workerProblem(status: WorkerStatus, lastClaimAgeMs: number | null, maxPollAgeMs: number): string | undefined {
  if (status.state === 'none') return undefined;
  if (status.state !== 'running') return `the worker is ${status.state}`;
  const full = status.concurrency > 0 && status.inFlight >= status.concurrency;
  if (!full && (lastClaimAgeMs === null || lastClaimAgeMs > maxPollAgeMs)) {
    return `the worker loop has not polled for ${lastClaimAgeMs ?? 'ever'} ms (limit ${maxPollAgeMs})`
      + (status.lastError ? `: ${redact(status.lastError.message)}` : '');
  }
  return undefined;
}

function lagProblem(stats: QueueStats[], maxOldestPendingAgeMs: number | undefined): string | undefined {
  if (maxOldestPendingAgeMs === undefined) return undefined;
  const late = stats.filter((s) => s.oldestPendingAgeMs !== null && s.oldestPendingAgeMs > maxOldestPendingAgeMs);
  return late.length === 0 ? undefined
    : `tasks have waited longer than ${maxOldestPendingAgeMs} ms in ${late.map((s) => `"${s.queue}" (${s.oldestPendingAgeMs} ms)`).join(', ')}`;
}

function emptyQueue(queue: string): QueueStats {
  return { queue, pending: 0, running: 0, sleeping: 0, completed: 0, failed: 0, cancelled: 0, oldestPendingAgeMs: null };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), timerMs(ms));
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
