import type { DataSource } from 'typeorm';
import { createDurableMigrations } from './migrations/index.js';
import { quoteSchema } from './schema-name.js';

/**
 * Applies durable's migrations that are not yet recorded in `<schema>.migrations`, in one
 * transaction under an advisory lock, so processes that start together apply them once.
 */
export async function runMigrations(dataSource: DataSource, schema: string): Promise<string[]> {
  const s = quoteSchema(schema);
  const runner = dataSource.createQueryRunner();
  const applied: string[] = [];
  try {
    await runner.connect();
    await runner.startTransaction();
    await runner.query('select pg_advisory_xact_lock(hashtext($1))', [`nestjs-durable:migrations:${schema}`]);
    await runner.query(`create schema if not exists ${s}`);
    await runner.query(
      `create table if not exists ${s}.migrations (name text primary key, applied_at timestamptz not null default now())`,
    );
    const rows = (await runner.query(`select name from ${s}.migrations`)) as { name: string }[];
    const done = new Set(rows.map((row) => row.name));
    for (const migration of createDurableMigrations(schema)) {
      const name = migration.name ?? migration.constructor.name;
      if (done.has(name)) continue;
      await migration.up(runner);
      await runner.query(`insert into ${s}.migrations (name) values ($1)`, [name]);
      applied.push(name);
    }
    await runner.commitTransaction();
    return applied;
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}
