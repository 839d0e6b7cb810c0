import type pg from 'pg';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import {
  DurableClient, DurableTask, InvalidArgumentError, createDurableMigrations, durableMigrations,
  type DurableLogger, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const MIGRATION_NAMES = durableMigrations.map((Migration) => new Migration().name);
const DURABLE_TABLES = ['checkpoints', 'durable_migrations', 'events', 'flow_hands', 'flow_limits', 'flow_starts', 'queues', 'runs', 'schedules', 'task_counts', 'tasks', 'test_clock', 'waits', 'watches', 'worker_heartbeats'];

@DurableTask({ name: 'shared-double' })
class DoubleTask implements DurableTaskHandler<{ n: number }, number> {
  async run(params: { n: number }, ctx: TaskContext) {
    return ctx.step('double', () => params.n * 2);
  }
}

/** A logger that keeps what it was told. */
function recordingLogger(): DurableLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (m: string) => void lines.push(m), warn: (m: string) => void lines.push(m), error: (m: string) => void lines.push(m) };
}

/** What a schema holds, to show a refused start-up changed nothing. */
async function inventory(sql: pg.Pool, schema: string) {
  const q = async (text: string) => (await sql.query(text, [schema])).rows;
  return {
    schemas: (await sql.query(`select nspname from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema' order by 1`)).rows,
    relations: await q(`select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 order by 1`),
    columns: await q(`select table_name, column_name, data_type, is_nullable from information_schema.columns where table_schema = $1 order by 1, ordinal_position`),
    functions: await q(`select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = $1 order by 1`),
  };
}

/**
 * What a build before `durable_migrations` left: the first `count` migrations applied the way its
 * migrator did, recorded in `<schema>.migrations`.
 */
async function applyTheOldWay(url: string, schema: string, count = durableMigrations.length): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url });
  await dataSource.initialize();
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    await runner.startTransaction();
    await runner.query('select pg_advisory_xact_lock(hashtext($1))', [`nestjs-durable:migrations:${schema}`]);
    await runner.query(`create schema if not exists "${schema}"`);
    await runner.query(`create table if not exists "${schema}".migrations (name text primary key, applied_at timestamptz not null default now())`);
    for (const Migration of createDurableMigrations(schema).slice(0, count)) {
      const migration = new Migration();
      await migration.up(runner);
      await runner.query(`insert into "${schema}".migrations (name) values ($1)`, [migration.name]);
    }
    await runner.commitTransaction();
  } finally {
    await runner.release();
    await dataSource.destroy();
  }
}

class AppCreateNotes1700000000001 implements MigrationInterface {
  name = 'AppCreateNotes1700000000001';
  async up(runner: QueryRunner) {
    await runner.query(`create table public.notes (id serial primary key, body text not null)`);
  }
  async down(runner: QueryRunner) {
    await runner.query(`drop table public.notes`);
  }
}

class AppAddNoteAuthor1700000000002 implements MigrationInterface {
  name = 'AppAddNoteAuthor1700000000002';
  async up(runner: QueryRunner) {
    await runner.query(`alter table public.notes add column author text`);
  }
  async down(runner: QueryRunner) {
    await runner.query(`alter table public.notes drop column author`);
  }
}

describe('a schema shared with the app', () => {
  const databases: TestDatabase[] = [];
  const pools: pg.Pool[] = [];
  const apps: DurableTestApp[] = [];
  const clients: DurableClient[] = [];

  async function database(): Promise<{ db: TestDatabase; sql: pg.Pool }> {
    const db = await createTestDatabase();
    databases.push(db);
    const sql = sqlPool(db.url);
    pools.push(sql);
    return { db, sql };
  }
  async function connect(url: string, schema: string, logger: DurableLogger = recordingLogger()): Promise<DurableClient> {
    const client = await DurableClient.connect({ databaseUrl: url, schema, logger });
    clients.push(client);
    return client;
  }
  async function tablesOf(sql: pg.Pool, schema: string): Promise<string[]> {
    const { rows } = await sql.query(`select table_name from information_schema.tables where table_schema = $1 order by 1`, [schema]);
    return rows.map((row) => row.table_name as string);
  }
  /** Spawns through `client` and has a worker (DurableModule on `schema`) run it. */
  async function works(url: string, schema: string, n: number): Promise<void> {
    const t = await startApp(url, [DoubleTask], { schema });
    apps.push(t);
    const { taskId } = await t.client.spawn(DoubleTask, { n });
    await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBe(n * 2);
  }

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    while (clients.length > 0) await clients.pop()!.close();
  });
  afterAll(async () => {
    for (const pool of pools) await pool.end();
    for (const db of databases) await db.drop();
  });

  describe.each([
    {
      what: 'an app table `events`',
      setup: `create table public.events (id serial primary key, kind text not null, at timestamptz not null default now());
              insert into public.events (kind) values ('signup'), ('login');`,
      rows: `select kind from public.events order by id`,
      clashes: ['events'],
    },
    {
      what: 'app tables `queues` (with exactly durable\'s columns) and `tasks`',
      setup: `create table public.queues (name text primary key, created_at timestamptz not null);
              create table public.tasks (id serial primary key, title text not null, done boolean not null default false);
              insert into public.queues values ('mail', now());
              insert into public.tasks (title) values ('write report');`,
      rows: `select q.name, t.title from public.queues q, public.tasks t`,
      clashes: ['queues', 'tasks'],
    },
    {
      what: 'a TypeORM `migrations` table beside an app table `waits`',
      setup: `create table public.migrations (id serial primary key, "timestamp" bigint not null, name varchar not null);
              insert into public.migrations ("timestamp", name) values (1700000000001, 'AppCreateWaits1700000000001');
              create table public.waits (id serial primary key, who text);
              insert into public.waits (who) values ('ann');`,
      rows: `select m.name, w.who from public.migrations m, public.waits w`,
      clashes: ['waits'],
    },
    {
      what: 'a view `runs` and an index `tasks_created_at` of the app (the migrations would skip theirs: `if not exists`)',
      setup: `create table public.jobs (id serial primary key, created_at timestamptz not null default now());
              create index tasks_created_at on public.jobs (created_at desc, id desc);
              create view public.runs as select id, created_at from public.jobs;
              insert into public.jobs default values;`,
      rows: `select id from public.runs`,
      clashes: ['runs', 'tasks_created_at'],
    },
  ])('schema "public" holding $what', ({ setup, rows, clashes }) => {
    let db: TestDatabase;
    let sql: pg.Pool;
    let before: Awaited<ReturnType<typeof inventory>>;
    let data: unknown[];

    beforeAll(async () => {
      ({ db, sql } = await database());
      await sql.query(setup);
      before = await inventory(sql, 'public');
      data = (await sql.query(rows)).rows;
    });

    async function expectUntouched(): Promise<void> {
      expect(await inventory(sql, 'public')).toEqual(before);
      expect((await sql.query(rows)).rows).toEqual(data);
      const { rows: schemas } = await sql.query(`select nspname from pg_namespace where nspname = 'durable'`);
      expect(schemas).toEqual([]);
    }

    it('DurableClient.connect refuses it with InvalidArgumentError naming the clashing tables, and creates nothing', async () => {
      const error = await connect(db.url, 'public').then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      const message = (error as Error).message;
      for (const table of clashes) expect(message).toContain(`"public".${table}`);
      expect(message).not.toContain(`"public".migrations`);
      expect(message).toMatch(/schema/);
      expect(message).toContain(`'durable'`);
      await expectUntouched();
    });

    it('DurableModule.forRoot start-up refuses it too, and creates nothing', async () => {
      const error = await startApp(db.url, [DoubleTask], { schema: 'public' }).then(
        (t) => { apps.push(t); return undefined; },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidArgumentError);
      for (const table of clashes) expect((error as Error).message).toContain(`"public".${table}`);
      await expectUntouched();

      // What the message advises: the default schema, beside the app's tables, works.
      await works(db.url, 'durable', 3);
      expect(await inventory(sql, 'public')).toEqual({ ...before, schemas: [...before.schemas, { nspname: 'durable' }].sort((a, b) => a.nspname.localeCompare(b.nspname)) });
      expect((await sql.query(rows)).rows).toEqual(data);
    });
  });

  it('schema "public" beside the app\'s TypeORM migrations table: durable keeps its own books, TypeORM keeps working', async () => {
    const { db, sql } = await database();
    const app = new DataSource({ type: 'postgres', url: db.url, migrations: [AppCreateNotes1700000000001] });
    await app.initialize();
    try {
      await app.runMigrations();
      const theirs = (await sql.query(`select id, "timestamp", name from public.migrations order by id`)).rows;
      expect(theirs.map((row) => row.name)).toEqual(['AppCreateNotes1700000000001']);

      await connect(db.url, 'public');
      await works(db.url, 'public', 5);
      expect((await sql.query(`select id, "timestamp", name from public.migrations order by id`)).rows).toEqual(theirs);
      const ours = await sql.query(`select name from public.durable_migrations order by name`);
      expect(ours.rows.map((row) => row.name)).toEqual([...MIGRATION_NAMES].sort());

      // The app's next migration runs, and durable's next start-up applies nothing.
      const next = new DataSource({ type: 'postgres', url: db.url, migrations: [AppCreateNotes1700000000001, AppAddNoteAuthor1700000000002] });
      await next.initialize();
      try {
        expect((await next.runMigrations()).map((m) => m.name)).toEqual(['AppAddNoteAuthor1700000000002']);
      } finally {
        await next.destroy();
      }
      const logger = recordingLogger();
      await connect(db.url, 'public', logger);
      expect(logger.lines.filter((line) => /applied migrations/.test(line))).toEqual([]);
    } finally {
      await app.destroy();
    }
  });

  it('schema "public" in an empty database works, with durable\'s bookkeeping in public.durable_migrations', async () => {
    const { db, sql } = await database();
    await works(db.url, 'public', 7);
    expect(await tablesOf(sql, 'public')).toEqual(DURABLE_TABLES);
    const ours = await sql.query(`select name from public.durable_migrations order by name`);
    expect(ours.rows.map((row) => row.name)).toEqual([...MIGRATION_NAMES].sort());
    const schemas = await sql.query(`select nspname from pg_namespace where nspname = 'durable'`);
    expect(schemas.rows).toEqual([]);
  });

  it('an app table `migrations` with durable\'s columns but not durable\'s names is the app\'s: left alone', async () => {
    const { db, sql } = await database();
    await sql.query(`create table public.migrations (name text primary key, applied_at timestamptz not null default now());
                     insert into public.migrations (name) values ('AppSeedCountries1'), ('${MIGRATION_NAMES[0]}')`);
    const theirs = (await sql.query(`select * from public.migrations order by name`)).rows;
    await works(db.url, 'public', 11);
    expect((await sql.query(`select * from public.migrations order by name`)).rows).toEqual(theirs);
    expect(await tablesOf(sql, 'public')).toEqual([...DURABLE_TABLES, 'migrations'].sort());
  });

  describe.each([
    { schema: 'durable', count: durableMigrations.length },
    { schema: 'public', count: 1 },
    { schema: 'durable_old', count: 2 },
  ])('a database an earlier build migrated (schema "$schema", $count migration(s) in "$schema".migrations)', ({ schema, count }) => {
    it('upgrades: the table is renamed durable_migrations, nothing applied twice, and durable works', async () => {
      const { db, sql } = await database();
      await applyTheOldWay(db.url, schema, count);
      const old = (await sql.query(`select name, applied_at from "${schema}".migrations order by name`)).rows;
      expect(old.map((row) => row.name)).toEqual(MIGRATION_NAMES.slice(0, count).sort());

      const logger = recordingLogger();
      await connect(db.url, schema, logger);
      const rest = MIGRATION_NAMES.slice(count);
      expect(logger.lines.filter((line) => /applied migrations/.test(line)))
        .toEqual(rest.length === 0 ? [] : [`applied migrations to schema "${schema}": ${rest.join(', ')}`]);

      expect(await tablesOf(sql, schema)).toEqual(DURABLE_TABLES);
      const now = (await sql.query(`select name, applied_at from "${schema}".durable_migrations order by name`)).rows;
      expect(now.filter((row) => MIGRATION_NAMES.slice(0, count).includes(row.name))).toEqual(old);
      expect(now.map((row) => row.name)).toEqual([...MIGRATION_NAMES].sort());
      // Its key (and on PostgreSQL 18 its NOT NULLs) are named as in a table durable makes today.
      await connect(db.url, 'fresh_reference');
      const constraints = async (table: string) => (await sql.query(
        `select conname, pg_get_constraintdef(oid) as definition from pg_constraint where conrelid = $1::regclass order by 1`,
        [table],
      )).rows;
      expect(await constraints(`"${schema}".durable_migrations`)).toEqual(await constraints('fresh_reference.durable_migrations'));
      expect(await constraints(`"${schema}".durable_migrations`)).toContainEqual({ conname: 'durable_migrations_pkey', definition: 'PRIMARY KEY (name)' });

      await works(db.url, schema, 13);
    });
  });

  it('a schema made by durableMigrations through the app\'s own DataSource is durable\'s: the migrator takes it over', async () => {
    const { db, sql } = await database();
    const app = new DataSource({ type: 'postgres', url: db.url, migrations: durableMigrations, migrationsTableName: 'app_migrations' });
    await app.initialize();
    try {
      await app.runMigrations();
    } finally {
      await app.destroy();
    }
    await works(db.url, 'durable', 17);
    const ours = await sql.query(`select name from durable.durable_migrations order by name`);
    expect(ours.rows.map((row) => row.name)).toEqual([...MIGRATION_NAMES].sort());
  });
});
