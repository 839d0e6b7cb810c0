import type { MigrationInterface } from 'typeorm';
import { DurableCreateTables1764000000001 } from './0001-create-tables.js';
import { DurableCreateFunctions1764000000002 } from './0002-create-functions.js';
import { DurableBatchedWrites1764000000003 } from './0003-batched-writes.js';

/** Durable's migrations in order, for apps that run them with their own DataSource (schema `durable`). */
export const durableMigrations = [
  DurableCreateTables1764000000001,
  DurableCreateFunctions1764000000002,
  DurableBatchedWrites1764000000003,
];

/** The same migrations for another schema. Append-only: released migrations never change. */
export function createDurableMigrations(schema: string): MigrationInterface[] {
  return durableMigrations.map((Migration) => new Migration(schema));
}
