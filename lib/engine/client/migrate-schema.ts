import { DurableConnection, passwordOf } from '../db/connection.js';
import { translateDatabaseError } from '../db/database-errors.js';
import { resolveOptions } from '../options.js';
import { runMigrations } from '../sql/migrator.js';
import { consoleLogger } from '../support/logger.js';
import type { DurableClientOptions } from './durable-client.js';

/**
 * Applies durable's migrations that the schema lacks (as `migrationsRun` does at startup) and
 * returns their names, oldest first; none when the schema is up to date. For the CLI's `migrate`.
 */
export async function migrateSchema(options: Pick<DurableClientOptions, 'databaseUrl' | 'schema' | 'queryTimeoutMs' | 'logger'>): Promise<string[]> {
  const resolved = resolveOptions({ ...options, worker: false, migrationsRun: false, poolSize: 1 });
  const { databaseUrl = process.env.DURABLE_DATABASE_URL } = options;
  const connection = await DurableConnection.open(resolved.connection, options.logger ?? consoleLogger);
  try {
    return await runMigrations(connection.dataSource, resolved.connection.schema);
  } catch (error) {
    throw translateDatabaseError(error, databaseUrl ? passwordOf(databaseUrl) : undefined);
  } finally {
    await connection.close();
  }
}
