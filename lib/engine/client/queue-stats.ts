import type { QueueStats, StatsOptions } from '../../interfaces/task-snapshot.interface.js';
import type { Store } from '../db/store.js';
import { assertName } from '../support/validation.js';

/**
 * `client.stats`: per queue, the tasks in each state and the wait of the oldest due pending
 * task. The counts come from `task_counts` (kept by triggers on `tasks`, see migration 0009), so
 * the cost grows with the number of queues, not of tasks; the oldest wait is one probe of the
 * claim index per priority level present in the queue (see migration 0011).
 */
export async function queueStats(store: Store, options: StatsOptions = {}): Promise<QueueStats[]> {
  if (options.queue !== undefined) assertName(options.queue, 'queue');
  const rows = await store.query(store.sql.queueStats(options.queue ?? null));
  return rows.map((row) => ({
    queue: row.queue as string,
    pending: Number(row.pending),
    running: Number(row.running),
    sleeping: Number(row.sleeping),
    completed: Number(row.completed),
    failed: Number(row.failed),
    cancelled: Number(row.cancelled),
    oldestPendingAgeMs: row.oldest_pending_at === null
      ? null
      : Math.max(0, (row.db_now as Date).getTime() - (row.oldest_pending_at as Date).getTime()),
  }));
}
