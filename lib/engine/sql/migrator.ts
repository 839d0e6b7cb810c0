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
 * Durable's tables with the columns the migration that made them gave them (format_type text,
 * `!` for not null). Released migrations never change, so neither do these lines. A later
 * migration that adds a table adds it here too (a table of that name the app made is then
 * refused), but not to FIRST_TABLES.
 */
const TABLES: Record<string, string> = {
  queues: 'name text!, created_at timestamptz!',
  tasks: 'id uuid!, queue text!, name text!, params json!, headers json!, state text!, attempts integer!, ' +
    'max_attempts integer!, retry jsonb!, cancellation jsonb, idempotency_key text, run_id uuid!, result json, ' +
    'error jsonb, cancel_at timestamptz, created_at timestamptz!, updated_at timestamptz!, ' +
    'first_started_at timestamptz, finished_at timestamptz',
  runs: 'id uuid!, task_id uuid!, queue text!, attempt integer!, state text!, available_at timestamptz!, ' +
    'worker_id text, lease_expires_at timestamptz, wake_event text, error jsonb, created_at timestamptz!, ' +
    'started_at timestamptz, finished_at timestamptz',
  checkpoints: 'task_id uuid!, name text!, value json, attempt integer!, created_at timestamptz!',
  events: 'queue text!, name text!, payload json, emitted_at timestamptz, created_at timestamptz!',
  waits: 'run_id uuid!, step_name text!, task_id uuid!, queue text!, event_name text!, timeout_at timestamptz, ' +
    'created_at timestamptz!',
  test_clock: 'id boolean!, offset_ms double precision!',
};

/** The tables of the first migration: a schema that has all of them with these columns was made by durable's migrations. */
const FIRST_TABLES = ['queues', 'tasks', 'runs', 'checkpoints', 'events', 'waits', 'test_clock'];

/** The indexes the migrations create `if not exists` (one of the app's would be taken silently), and their tables. */
const INDEXES: Record<string, string> = {
  tasks_idempotency_key: 'tasks',
  tasks_created_at: 'tasks',
  tasks_queue_created_at: 'tasks',
  tasks_cancel_at: 'tasks',
  tasks_finished_at: 'tasks',
  runs_claimable: 'runs',
  runs_running: 'runs',
  waits_event: 'waits',
  waits_task: 'waits',
};

const LEDGER_COLUMNS = ['name text not null', 'applied_at timestamp with time zone not null'];

const KINDS: Record<string, string> = {
  r: 'table', p: 'table', v: 'view', m: 'materialized view', i: 'index', I: 'index', S: 'sequence', f: 'foreign table', c: 'type',
};

interface Relation {
  relname: string;
  kind: string;
  /** For an index, the table it is on. */
  table: string | null;
  columns: string[];
  key: string | null;
}

function columnsOf(spec: string): string[] {
  return spec.split(', ').map((column) => {
    const notNull = column.endsWith('!');
    const text = (notNull ? column.slice(0, -1) : column).replace(/ timestamptz$/, ' timestamp with time zone');
    return notNull ? `${text} not null` : text;
  });
}

function isLedger(relation: Relation | undefined): relation is Relation {
  return relation !== undefined && relation.kind === 'r' && relation.key === 'PRIMARY KEY (name)' &&
    relation.columns.length === LEDGER_COLUMNS.length && LEDGER_COLUMNS.every((column, i) => relation.columns[i] === column);
}

/**
 * Makes sure the schema is durable's before anything is created in it. Every statement of the
 * migrations is `if not exists`, so without this an app's own `events` or `tasks` in a shared
 * schema (say `public`) would be taken for durable's, written into, and emptied by `dropQueue`.
 *
 * - `<schema>.migrations` of an earlier build (exactly `name text primary key, applied_at
 *   timestamptz`, holding only durable's migration names) is renamed `durable_migrations`; any
 *   other `migrations` (TypeORM's, say) is the app's and is left alone.
 * - Durable's table and index names are durable's when `durable_migrations` records the first
 *   migration, or when all of durable's tables are there with durable's columns (the app ran
 *   `durableMigrations` through its own DataSource; the migrations are idempotent). Otherwise
 *   any of them in the schema is the app's: InvalidArgumentError, and nothing created.
 */
async function claimSchema(runner: QueryRunner, schema: string): Promise<void> {
  const s = quoteSchema(schema);
  const names = [...Object.keys(TABLES), ...Object.keys(INDEXES), 'migrations', MIGRATIONS_TABLE, `${MIGRATIONS_TABLE}_pkey`];
  const relations = (await runner.query(
    `select c.relname, c.relkind::text as kind,
       (select t.relname::text from pg_index i join pg_class t on t.oid = i.indrelid where i.indexrelid = c.oid) as "table",
       array(select format('%s %s%s', a.attname, format_type(a.atttypid, a.atttypmod), case when a.attnotnull then ' not null' else '' end)
             from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum) as columns,
       (select pg_get_constraintdef(k.oid) from pg_constraint k where k.conrelid = c.oid and k.contype = 'p') as key
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relname = any($2::text[])`,
    [schema, names],
  )) as Relation[];
  if (relations.length === 0) return; // no schema yet, or nothing of durable's name in it
  const found = new Map(relations.map((relation) => [relation.relname, relation]));
  const durableNames: string[] = durableMigrations.map((Migration) => new Migration().name);

  let ledger = found.get(MIGRATIONS_TABLE);
  if (ledger !== undefined && !isLedger(ledger)) refuse(schema, [ledger]);
  const old = found.get('migrations');
  if (ledger === undefined && isLedger(old)) {
    const recorded = ((await runner.query(`select name from ${s}.migrations`)) as { name: string }[]).map((row) => row.name);
    if (recorded.length > 0 && recorded.every((name) => durableNames.includes(name))) {
      await runner.query(`alter table ${s}.migrations rename to ${MIGRATIONS_TABLE}`);
      // Its constraints (the key, and on PostgreSQL 18 the NOT NULLs) get the names a new table has.
      const constraints = (await runner.query(
        `select conname::text as name, contype::text as type from pg_constraint where conrelid = $1::regclass`,
        [`${s}.${MIGRATIONS_TABLE}`],
      )) as { name: string; type: string }[];
      for (const { name, type } of constraints) {
        if (!/^migrations_[a-z0-9_]+$/.test(name) || (type === 'p' && found.has(`${MIGRATIONS_TABLE}_pkey`))) continue;
        await runner.query(`alter table ${s}.${MIGRATIONS_TABLE} rename constraint ${name} to durable_${name}`);
      }
      ledger = old;
    }
  }
  if (ledger !== undefined) {
    const first = await runner.query(`select 1 from ${s}.${MIGRATIONS_TABLE} where name = $1`, [durableNames[0]]);
    if (first.length > 0) return; // durable created its tables here
  }

  const taken = relations.filter((relation) => Object.hasOwn(TABLES, relation.relname) || Object.hasOwn(INDEXES, relation.relname));
  if (taken.length === 0) return;
  const durableMade =
    Object.entries(TABLES).every(([name, spec]) => {
      const table = found.get(name);
      if (table === undefined) return !FIRST_TABLES.includes(name);
      return table.kind === 'r' && columnsOf(spec).every((column) => table.columns.includes(column));
    }) &&
    Object.entries(INDEXES).every(([name, table]) => {
      const index = found.get(name);
      return index === undefined || (index.kind === 'i' && index.table === table);
    });
  if (!durableMade) refuse(schema, taken);
}

function refuse(schema: string, relations: Relation[]): never {
  const list = relations
    .map((relation) => `"${schema}".${relation.relname} (${KINDS[relation.kind] ?? 'relation'})`)
    .sort()
    .join(', ');
  throw new InvalidArgumentError(
    `schema "${schema}" holds ${list}, which durable did not create but would take for its own (and write into, ` +
    `and delete from). Durable needs a schema of its own: set the schema option to one the app does not use ` +
    `(the default is 'durable'), or move these out of "${schema}". Nothing was created.`,
  );
}
