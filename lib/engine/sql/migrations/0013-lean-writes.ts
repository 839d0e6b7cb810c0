import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quoteSchema } from '../schema-name.js';
import { pinSearchPath } from './0004-execution-fencing.js';
import { writeBatchSql } from './0009-progress-and-watching.js';

/**
 * Fewer writes per task on the hot path (issue 18: WAL and CPU per task).
 *
 * - `tasks_finished_at` is dropped. A task's completion set an indexed column, so every
 *   completion (and failure, cancellation) was a non-HOT update of `tasks`: a new entry in each of
 *   its indexes. Without it the update can stay on its page (HOT). `cleanup` finds old terminal
 *   tasks through `tasks_created_at` instead (a task finishes after it is created, so one finished
 *   before a time was created before it).
 * - `tasks` gets fillfactor 50 (was 80): a task is updated twice on a plain run (claim, outcome),
 *   and each HOT update needs room on its page for the new version. At 80, 36% of those updates
 *   were HOT in a 20,000-task drain; at 50, 97%, and the WAL per 1-step task fell from 2,945 to
 *   2,527 bytes. New pages are filled to half; the table takes more room, not more writes.
 * - `write_batch` renews a run's lease at a checkpoint only when the last renewal is older than
 *   min(a tenth of the lease, 1 s): a short task's steps no longer rewrite its `runs` row each.
 *   The fence and the lease arithmetic are written inline (see `writeBatchSql`'s `lean`).
 */
export class DurableLeanWrites1764000000013 implements MigrationInterface {
  readonly name = 'DurableLeanWrites1764000000013';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
drop index if exists ${s}.tasks_finished_at;
alter table ${s}.tasks set (fillfactor = 50);
${writeBatchSql(s, true)}
${pinSearchPath(this.schema)}`);
  }

  /** Back to 0009's `write_batch` and the index. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
create index if not exists tasks_finished_at on ${s}.tasks (finished_at) where finished_at is not null;
alter table ${s}.tasks set (fillfactor = 80);
${writeBatchSql(s)}
${pinSearchPath(this.schema)}`);
  }
}
