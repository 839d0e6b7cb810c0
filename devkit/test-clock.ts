// Moves durable's database clock, as tests and the chaos load run do to pass long sleeps at once.
import type pg from 'pg';
import { buildStatements } from '../lib/engine/sql/statements.js';

/**
 * Moves the clock of durable's SQL (its `now()` function) forward by `ms`. Works on a database
 * created with the test clock on (devkit/databases.ts `createDatabase({ testClock: true })`).
 */
export async function advanceTestClock(pool: pg.Pool, ms: number, schema = 'durable'): Promise<void> {
  const { text, values } = buildStatements(schema).advanceTestClock(ms);
  await pool.query(text, values);
}
