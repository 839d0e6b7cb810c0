import type { DataSource, QueryRunner } from 'typeorm';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import { createDurableMigrations, durableMigrations } from './migrations/index.js';
import { quoteSchema } from './schema-name.js';

/**
 * Where durable records the migrations it applied: `<schema>.durable_migrations`. Not
 * `migrations`, the name of TypeORM's own migrations table (earlier builds used it; `claimSchema`
 * renames theirs).
 */
export const MIGRATIONS_TABLE = 'durable_migrations';

/**
 * Applies durable's migrations that are not yet recorded in `<schema>.durable_migrations`, in one
 * transaction under an advisory lock, so processes that start together apply them once. First
 * `claimSchema` refuses a schema holding tables durable did not create.
 */
export async function runMigrations(dataSource: DataSource, schema: string): Promise<string[]> {
  const s = quoteSchema(schema);
  const runner = dataSource.createQueryRunner();
  const applied: string[] = [];
  try {
    await runner.connect();
    await runner.startTransaction();
    await runner.query('select pg_advisory_xact_lock(hashtext($1))', [`nestjs-durable:migrations:${schema}`]);
    await claimSchema(runner, schema);
    await runner.query(`create schema if not exists ${s}`);
    await runner.query(
      `create table if not exists ${s}.${MIGRATIONS_TABLE} (name text primary key, applied_at timestamptz not null default now())`,
    );
    const rows = (await runner.query(`select name from ${s}.${MIGRATIONS_TABLE}`)) as { name: string }[];
    const done = new Set(rows.map((row) => row.name));
    for (const Migration of createDurableMigrations(schema)) {
      const migration = new Migration();
      const name = migration.name;
      if (done.has(name)) continue;
      await migration.up(runner);
      await runner.query(`insert into ${s}.${MIGRATIONS_TABLE} (name) values ($1)`, [name]);
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

// ---- What the schema holds before durable's migrations run ------------------------------------

/**
 * The tables and indexes of durable's migrations, all created `if not exists`. `runs_claimable` and
 * `tasks_finished_at` stay listed though 0008 and 0013 drop them: 0001 still creates them `if not
 * exists` and the later migration drops them by name, so an app's relation of that name would be
 * taken for durable's and dropped.
 */
const DURABLE_RELATIONS = [
  'queues', 'tasks', 'runs', 'checkpoints', 'events', 'waits', 'test_clock',
  'tasks_idempotency_key', 'tasks_created_at', 'tasks_queue_created_at', 'tasks_cancel_at', 'tasks_finished_at',
  'runs_claimable', 'runs_running', 'waits_event', 'waits_task', 'watches', 'task_counts', 'worker_heartbeats',
  'flow_limits', 'flow_starts', 'schedules', 'runs_claim_priority', 'flow_starts_window', 'schedules_due', 'flow_hands',
];

const KINDS: Record<string, string> = { r: 'table', p: 'table', v: 'view', m: 'materialized view', i: 'index', I: 'index', f: 'foreign table' };

/**
 * Makes sure the schema is durable's before anything is created in it. Every statement of the
 * migrations is `if not exists`, so without this an app's own `events` or `tasks` in a shared
 * schema (say `public`) would be taken for durable's, written into, and emptied by `dropQueue`.
 * The schema is durable's when `durable_migrations` records the first migration, or when it holds
 * durable's `claim_tasks` (the app ran `durableMigrations` through its own DataSource). Otherwise
 * any relation under one of durable's names is the app's: InvalidArgumentError, nothing created.
 */
async function claimSchema(runner: QueryRunner, schema: string): Promise<void> {
  const s = quoteSchema(schema);
  const first = new durableMigrations[0]().name;
  await adoptEarlierLedger(runner, schema);
  const [{ ledger, functions }] = (await runner.query(
    `select to_regclass($2) is not null as ledger,
       exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
               where n.nspname = $1 and p.proname = 'claim_tasks') as functions`,
    [schema, `${s}.${MIGRATIONS_TABLE}`],
  )) as { ledger: boolean; functions: boolean }[];
  if (functions) return;
  if (ledger && (await runner.query(`select 1 from ${s}.${MIGRATIONS_TABLE} where name = $1`, [first])).length > 0) return;
  const taken = (await runner.query(
    `select c.relname, c.relkind::text as kind from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relname = any($2::text[]) order by c.relname`,
    [schema, DURABLE_RELATIONS],
  )) as { relname: string; kind: string }[];
  if (taken.length === 0) return;
  const list = taken.map((relation) => `"${schema}".${relation.relname} (${KINDS[relation.kind] ?? 'relation'})`).join(', ');
  throw new InvalidArgumentError(
    `schema "${schema}" holds ${list}, which durable did not create but would take for its own (and write into, ` +
    `and delete from). Durable needs a schema of its own: set the schema option to one the app does not use ` +
    `(the default is 'durable'), or move these out of "${schema}". Nothing was created.`,
  );
}

/**
 * Earlier builds recorded their migrations in `<schema>.migrations` (TypeORM's default name too).
 * That table is durable's, and renamed `durable_migrations`, when it has exactly durable's columns
 * and holds only durable's migration names; any other `migrations` is the app's and left alone.
 */
async function adoptEarlierLedger(runner: QueryRunner, schema: string): Promise<void> {
  const s = quoteSchema(schema);
  const [{ columns, ledger }] = (await runner.query(
    `select to_regclass($2) is not null as ledger,
       (select string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position)
        from information_schema.columns where table_schema = $1 and table_name = 'migrations') as columns`,
    [schema, `${s}.${MIGRATIONS_TABLE}`],
  )) as { columns: string | null; ledger: boolean }[];
  if (ledger || columns !== 'name text, applied_at timestamp with time zone') return;
  const names = new Set<string>(durableMigrations.map((Migration) => new Migration().name));
  const recorded = (await runner.query(`select name from ${s}.migrations`)) as { name: string }[];
  if (recorded.length === 0 || !recorded.every((row) => names.has(row.name))) return;
  await runner.query(`alter table ${s}.migrations rename to ${MIGRATIONS_TABLE}`);
  // Its constraints (the key, and on PostgreSQL 18 the NOT NULLs) get the names a new table has.
  const constraints = (await runner.query(
    `select conname::text as name from pg_constraint where conrelid = $1::regclass and conname like 'migrations%'`,
    [`${s}.${MIGRATIONS_TABLE}`],
  )) as { name: string }[];
  for (const { name } of constraints) await runner.query(`alter table ${s}.${MIGRATIONS_TABLE} rename constraint ${name} to durable_${name}`);
}
