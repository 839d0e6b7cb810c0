import type { Store } from '../db/store.js';
import { Batcher } from '../support/batcher.js';

/**
 * `tasks.last_execution`, an opaque note observers keep about each task's latest execution
 * (telemetry keeps its span's trace context there, so that the next execution, in whatever
 * process, can link to it). Swaps are group-committed: one statement for all issued together.
 */
export class ExecutionLinks {
  private readonly batcher: Batcher<{ taskId: string; value: string }, string | null>;

  constructor(store: Store) {
    this.batcher = new Batcher(async (items) => {
      const rows = await store.query(store.sql.swapLastExecutions(items));
      const previous = new Map(rows.map((row) => [row.task_id as string, (row.previous as string | null) ?? null]));
      return items.map((item): PromiseSettledResult<string | null> => ({ status: 'fulfilled', value: previous.get(item.taskId) ?? null }));
    }, { maxBatch: 500, maxInFlight: 2, exclusiveKey: (item) => item.taskId });
  }

  /** Stores `value` as the task's note and resolves with the one it replaced (null if none). */
  swap(taskId: string, value: string): Promise<string | null> {
    return this.batcher.add({ taskId, value });
  }
}
