import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DurableClient } from '../engine/client/durable-client.js';
import type { ResolvedDashboardOptions } from './dashboard-options.interface.js';
import { DASHBOARD_OPTIONS } from './dashboard.constants.js';

const HOUR_MS = 3_600_000;

/** One queue in one sample: its finished tasks so far (a counter) and its lag then. */
export interface QueueSample {
  /** completed + failed + cancelled at that moment (their growth between samples is the throughput). */
  finished: number;
  failed: number;
  pending: number;
  /** The oldest due pending task's wait, in ms (0 when none waits). */
  lagMs: number;
}

export interface StatsSample {
  at: number;
  queues: Record<string, QueueSample>;
}

/**
 * The queue page's history: the client has no read of past throughput, so this samples
 * `client.stats()` (counters, cheap) every `sampleIntervalMs` and keeps the last hour in memory.
 * Per process; it starts empty at each start of the app.
 */
@Injectable()
export class DashboardStatsSampler implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('DurableDashboard');
  private readonly ring: StatsSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;

  constructor(
    @Inject(DurableClient) private readonly client: DurableClient,
    @Inject(DASHBOARD_OPTIONS) private readonly options: ResolvedDashboardOptions,
  ) {}

  onModuleInit(): void {
    this.timer = setInterval(() => void this.sample(), this.options.sampleIntervalMs);
    this.timer.unref();
    void this.sample();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.sampling;
  }

  /** The samples of the last hour, oldest first. */
  samples(): StatsSample[] {
    return this.ring.slice();
  }

  private sample(): Promise<void> {
    if (this.sampling || !this.timer) return this.sampling ?? Promise.resolve();
    this.sampling = this.client.stats().then((stats) => {
      const queues: Record<string, QueueSample> = {};
      for (const s of stats) {
        queues[s.queue] = { finished: s.completed + s.failed + s.cancelled, failed: s.failed, pending: s.pending, lagMs: s.oldestPendingAgeMs ?? 0 };
      }
      const at = Date.now();
      this.ring.push({ at, queues });
      while (this.ring.length > 0 && this.ring[0].at < at - HOUR_MS) this.ring.shift();
    }, (error: unknown) => {
      // The database may be away for a while: the chart shows the gap.
      this.logger.debug(`stats sample skipped: ${error instanceof Error ? error.message : String(error)}`);
    }).finally(() => { this.sampling = undefined; });
    return this.sampling;
  }
}
