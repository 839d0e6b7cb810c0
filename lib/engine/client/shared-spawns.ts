import { isConnectionError } from '../db/database-errors.js';
import type { Row, Store } from '../db/store.js';
import type { SpawnRow } from '../sql/statements.js';
import { Batcher } from '../support/batcher.js';
import { delay } from '../support/wakeable.js';

/** Contended spawns that wait in statements of their own (each holding a connection), at most. */
const WAITING_ALONE = 2;
/** Spawns with an idempotency key per batch statement, at most (spawn_batch_nowait's limit). */
const KEYS_PER_STATEMENT = 64;

/**
 * Spawns issued at the same time share a commit: they go in batch statements, which never wait
 * for another transaction. A spawn that would ('contended': an open transaction is inserting its
 * key or its queue's first row) waits on its own: alone in a statement while fewer than
 * WAITING_ALONE do, else by trying later batches.
 */
export class SharedSpawns {
  private readonly batcher = new Batcher<SpawnRow, Row>((batch) => this.spawnBatch(batch), { maxBatch: 500, maxInFlight: 4 });
  private waitingAlone = 0;

  constructor(private readonly store: Store) {}

  async spawn(row: SpawnRow): Promise<Row> {
    for (let pauseMs = 5; ; pauseMs = Math.min(pauseMs * 2, 250)) {
      const spawned = await this.batcher.add(row);
      if (spawned.outcome === 'ok') return spawned;
      if (spawned.outcome === 'deferred') continue;
      if (this.waitingAlone < WAITING_ALONE) {
        this.waitingAlone += 1;
        return this.store.one(this.store.sql.spawn(row)).finally(() => (this.waitingAlone -= 1));
      }
      await delay(pauseMs);
    }
  }

  /** One statement, with at most KEYS_PER_STATEMENT keys (later ones are deferred). If it fails
   * for another reason than the connection, each spawn is tried alone: one cannot fail the others. */
  private async spawnBatch(batch: SpawnRow[]): Promise<PromiseSettledResult<Row>[]> {
    let keys = 0;
    const now = batch.filter((row) => row.idempotencyKey === null || ++keys <= KEYS_PER_STATEMENT);
    let results: PromiseSettledResult<Row>[];
    try {
      results = (await this.store.query(this.store.sql.spawnBatch(now))).map((row) => ({ status: 'fulfilled', value: row }));
    } catch (error) {
      if (isConnectionError(error)) throw error;
      results = now.length === 1 ? [{ status: 'rejected', reason: error }]
        : await Promise.allSettled(now.map((row) => this.store.one(this.store.sql.spawnBatch([row]))));
    }
    const done = new Map(now.map((row, index) => [row, results[index]]));
    return batch.map((row) => done.get(row) ?? { status: 'fulfilled', value: { outcome: 'deferred' } });
  }
}
