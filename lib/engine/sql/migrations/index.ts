import type { MigrationInterface } from 'typeorm';
import { assertSchemaName } from '../schema-name.js';
import { DurableCreateTables1764000000001 } from './0001-create-tables.js';
import { DurableCreateFunctions1764000000002 } from './0002-create-functions.js';
import { DurableBatchedWrites1764000000003 } from './0003-batched-writes.js';
import { DurableExecutionFencing1764000000004 } from './0004-execution-fencing.js';
import { DurableSpawnIsolation1764000000005 } from './0005-spawn-isolation.js';
import { DurableChildTasks1764000000006 } from './0006-child-tasks.js';
import { DurableCancelLockOrder1764000000007 } from './0007-cancel-lock-order.js';
import { DurableFlowControl1764000000008 } from './0008-flow-control.js';
import { DurableProgressAndWatching1764000000009 } from './0009-progress-and-watching.js';
import { DurableWorkerHeartbeats1764000000010 } from './0010-worker-heartbeats.js';
import { DurableQueueStatsByPriority1764000000011 } from './0011-queue-stats-by-priority.js';
import { DurableSetBasedFlowClaim1764000000012 } from './0012-set-based-flow-claim.js';
import { DurableLeanWrites1764000000013 } from './0013-lean-writes.js';
import { DurableTimeOrderedIds1764000000014 } from './0014-time-ordered-ids.js';
import { DurableLeanBatches1764000000015 } from './0015-lean-batches.js';
import { DurableRateFastClaim1764000000016 } from './0016-rate-fast-claim.js';

/**
 * A durable migration class as TypeORM takes it in `DataSource({ migrations })`: it calls
 * `new Migration()` (no arguments) and reads the instance's `name`, which ends in the 13-digit
 * timestamp TypeORM orders by.
 */
export interface DurableMigrationClass {
  new (): MigrationInterface & { readonly name: string };
  /** The same as the instances' `name`, e.g. `DurableCreateTables1764000000001`. */
  readonly name: string;
}

/** Durable's migrations in order, for apps that run them with their own DataSource (schema `durable`). */
export const durableMigrations = [
  DurableCreateTables1764000000001,
  DurableCreateFunctions1764000000002,
  DurableBatchedWrites1764000000003,
  DurableExecutionFencing1764000000004,
  DurableSpawnIsolation1764000000005,
  DurableChildTasks1764000000006,
  DurableCancelLockOrder1764000000007,
  DurableFlowControl1764000000008,
  DurableProgressAndWatching1764000000009,
  DurableWorkerHeartbeats1764000000010,
  DurableQueueStatsByPriority1764000000011,
  DurableSetBasedFlowClaim1764000000012,
  DurableLeanWrites1764000000013,
  DurableTimeOrderedIds1764000000014,
  DurableLeanBatches1764000000015,
  DurableRateFastClaim1764000000016,
];

/**
 * The same migrations for another schema: classes (not instances), each bound to `schema`, so
 * they go into a TypeORM DataSource's `migrations` array like `durableMigrations`. Their names
 * are the same for every schema (TypeORM refuses two migrations of one name in one DataSource:
 * run a second schema's migrations through a DataSource of their own, with a
 * `migrationsTableName` of their own). Append-only: released migrations never change.
 */
export function createDurableMigrations(schema: string): DurableMigrationClass[] {
  assertSchemaName(schema);
  return durableMigrations.map((Migration) => {
    const Base: new (schema: string) => MigrationInterface & { readonly name: string } = Migration;
    const Bound = class extends Base {
      constructor() {
        super(schema);
      }
    };
    // The class keeps its migration's name too, for code that reads `migrationClass.name`.
    Object.defineProperty(Bound, 'name', { value: Migration.name });
    return Bound;
  });
}
