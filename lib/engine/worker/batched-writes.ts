import { isConnectionError } from '../db/database-errors.js';
import type { Store } from '../db/store.js';
import type { WorkerWrite } from '../sql/statements.js';
import { Batcher } from '../support/batcher.js';

export type { WorkerWrite };

/** A function that writes a checkpoint or a completion and resolves with its fence's outcome. */
export type WriteFn = (write: WorkerWrite) => Promise<string>;

/**
 * A worker's checkpoints and completions, group-committed through `write_batch`: at most one
 * write per run in a batch, and each write's promise settles only after its batch committed.
 */
export function batchedWrites(store: Store, workerId: string): WriteFn {
  const send = async (writes: WorkerWrite[]): Promise<PromiseSettledResult<string>[]> => {
    const rows = await store.query(store.sql.writeBatch(workerId, writes));
    // A write whose task or run no longer exists (cleaned up, queue dropped) is lost.
    const outcomes = writes.map((): PromiseSettledResult<string> => ({ status: 'fulfilled', value: 'lost' }));
    for (const row of rows) outcomes[(row.i as number) - 1] = { status: 'fulfilled', value: row.outcome as string };
    return outcomes;
  };
  const batcher = new Batcher<WorkerWrite, string>(
    async (writes) => {
      try {
        return await send(writes);
      } catch (error) {
        // One write the database refuses must not fail the others: each is tried alone.
        if (writes.length === 1 || isConnectionError(error)) throw error;
        const alone = await Promise.allSettled(writes.map((write) => send([write])));
        return alone.map((result) => (result.status === 'fulfilled' ? result.value[0] : result));
      }
    },
    { maxBatch: 500, maxInFlight: 2, exclusiveKey: (write) => write.runId },
  );
  return (write) => batcher.add(write);
}
