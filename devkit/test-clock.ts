// Moves durable's database clock, as tests and the chaos load run do to pass long sleeps at once.
import type pg from 'pg';
import { buildStatements } from '../lib/engine/sql/statements.js';

/**
 * Makes the clock of durable's SQL (its `now()` function) a test clock, which `advanceTestClock`
 * moves. Once the migrations ran (a production schema's `now()` is the plain clock); idempotent.
 */
export async function installTestClock(pool: pg.Pool, schema = 'durable'): Promise<void> {
  const { text, values } = buildStatements(schema).installTestClock();
  await pool.query(text, values);
}

/**
 * Moves the clock of durable's SQL (its `now()` function) forward by `ms`, installing the test
 * clock first (see `installTestClock`). Call it after the app applied the migrations.
 */
export async function advanceTestClock(pool: pg.Pool, ms: number, schema = 'durable'): Promise<void> {
  await installTestClock(pool, schema);
  const { text, values } = buildStatements(schema).advanceTestClock(ms);
  await pool.query(text, values);
}
