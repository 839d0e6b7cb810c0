import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quoteSchema } from '../schema-name.js';

/**
 * Worker heartbeats (issue 17, `TaskSnapshot.waitingFor`'s 'noWorker'): one row per worker and
 * queue it polls, rewritten by the worker loop every few seconds (`expires_at` says until when
 * the worker counts as alive) and deleted when the worker stops.
 *
 * UNLOGGED: the rows are rewritten all the time and worth nothing after a crash, so they write
 * no WAL (and are not replicated); PostgreSQL empties the table after a crash restart, and the
 * live workers fill it again at their next beat. No SQL function reads or writes it: the
 * statements are in statements.ts (`workerBeat`, `workerGone`, the snapshot's waiting columns).
 */
export class DurableWorkerHeartbeats1764000000010 implements MigrationInterface {
  readonly name = 'DurableWorkerHeartbeats1764000000010';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
create unlogged table if not exists ${s}.worker_heartbeats (
  queue text not null,
  worker_id text not null,
  concurrency integer not null,
  in_flight integer not null,
  seen_at timestamptz not null,
  expires_at timestamptz not null,
  primary key (queue, worker_id)
) with (fillfactor = 50);`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`drop table if exists ${quoteSchema(this.schema)}.worker_heartbeats`);
  }
}
