import type pg from 'pg';
import { DataSource } from 'typeorm';
import {
  DurableClient, DurableTask, createDurableMigrations, durableMigrations,
  type DurableLogger, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };
const MIGRATION_NAMES = durableMigrations.map((Migration) => new Migration().name);

@DurableTask({ name: 'legacy' })
class LegacyTask implements DurableTaskHandler<{ n: number }, { n: number; attempt: number }> {
  async run(params: { n: number }, ctx: TaskContext) {
    const n = await ctx.step('triple', () => params.n * 3);
    return { n, attempt: ctx.attempt };
  }
}

/** Everything that defines a schema, in a comparable form. */
async function catalog(pool: pg.Pool, schema = 'durable') {
  const q = async (text: string) => (await pool.query(text, [schema])).rows;
  return {
    tables: await q(
      `select table_name, table_type from information_schema.tables where table_schema = $1 order by table_name`,
    ),
    columns: await q(
      `select table_name, column_name, ordinal_position, data_type, udt_name, column_default, is_nullable,
              character_maximum_length, numeric_precision, is_identity, is_generated
       from information_schema.columns where table_schema = $1 order by table_name, ordinal_position`,
    ),
    indexes: await q(`select tablename, indexname, indexdef from pg_indexes where schemaname = $1 order by tablename, indexname`),
    constraints: await q(
      `select cl.relname as table_name, co.conname, co.contype, pg_get_constraintdef(co.oid) as definition
       from pg_constraint co join pg_class cl on cl.oid = co.conrelid join pg_namespace n on n.oid = cl.relnamespace
       where n.nspname = $1 order by cl.relname, co.conname`,
    ),
    functions: await q(
      `select p.proname, pg_get_function_identity_arguments(p.oid) as arguments, p.provolatile, p.prokind,
              pg_get_functiondef(p.oid) as definition
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
       where n.nspname = $1 order by p.proname, arguments`,
    ),
    triggers: await q(
      `select cl.relname as table_name, tg.tgname, pg_get_triggerdef(tg.oid) as definition
       from pg_trigger tg join pg_class cl on cl.oid = tg.tgrelid join pg_namespace n on n.oid = cl.relnamespace
       where n.nspname = $1 and not tg.tgisinternal order by cl.relname, tg.tgname`,
    ),
    sequences: await q(`select sequence_name, data_type from information_schema.sequences where sequence_schema = $1 order by sequence_name`),
    views: await q(`select table_name, view_definition from information_schema.views where table_schema = $1 order by table_name`),
  };
}

type Catalog = Awaited<ReturnType<typeof catalog>>;

function withoutMigrationsTable(c: Catalog): Catalog {
  const keep = (row: Record<string, unknown>) => row.table_name !== 'durable_migrations' && row.tablename !== 'durable_migrations';
  return { ...c, tables: c.tables.filter(keep), columns: c.columns.filter(keep), indexes: c.indexes.filter(keep), constraints: c.constraints.filter(keep) };
}

/** An older release: only the first `count` migrations, applied the way durable's migrator does. */
async function applyFirstMigrations(url: string, count: number): Promise<void> {
  const dataSource = new DataSource({ type: 'postgres', url });
  await dataSource.initialize();
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    await runner.startTransaction();
    await runner.query('select pg_advisory_xact_lock(hashtext($1))', ['nestjs-durable:migrations:durable']);
    await runner.query(`create schema if not exists "durable"`);
    await runner.query(`create table if not exists "durable".durable_migrations (name text primary key, applied_at timestamptz not null default now())`);
    for (const Migration of createDurableMigrations('durable').slice(0, count)) {
      const migration = new Migration();
      await migration.up(runner);
      await runner.query(`insert into "durable".durable_migrations (name) values ($1)`, [migration.name ?? migration.constructor.name]);
    }
    await runner.commitTransaction();
  } finally {
    await runner.release();
    await dataSource.destroy();
  }
}

/** Resolves with how the promise settled, or 'hung' after `ms`. */
async function settleWithin<T>(promise: Promise<T>, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<{ status: 'hung' }>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'hung' }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ status: 'fulfilled' as const, value }),
        (error: unknown) => ({ status: 'rejected' as const, error: error as Error }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('migrations', () => {
  const databases: TestDatabase[] = [];
  const pools: pg.Pool[] = [];
  const apps: DurableTestApp[] = [];
  const dataSources: DataSource[] = [];

  async function database(): Promise<{ db: TestDatabase; sql: pg.Pool }> {
    const db = await createTestDatabase();
    databases.push(db);
    const sql = sqlPool(db.url);
    pools.push(sql);
    return { db, sql };
  }

  afterEach(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    for (const dataSource of dataSources.splice(0)) if (dataSource.isInitialized) await dataSource.destroy();
  });
  afterAll(async () => {
    for (const pool of pools) await pool.end();
    for (const db of databases) await db.drop();
  });

  it('durableMigrations are the numbered migration classes, in order', () => {
    // Append-only: the released ones keep their names and places; later ones come after.
    expect(MIGRATION_NAMES.slice(0, 2)).toEqual(['DurableCreateTables1764000000001', 'DurableCreateFunctions1764000000002']);
    const stamps = MIGRATION_NAMES.map((name) => {
      expect(name).toMatch(/^Durable[A-Za-z]+\d{13}$/);
      return Number(name.slice(-13));
    });
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    expect(new Set(stamps).size).toBe(stamps.length);
    expect(createDurableMigrations('other_schema').map((Migration) => new Migration().name)).toEqual(MIGRATION_NAMES);
  });

  it('a fresh database and one upgraded from the first migration end with identical schemas, and old data survives', async () => {
    const fresh = await database();
    const upgraded = await database();

    const x = await startApp(fresh.db.url, [LegacyTask]);
    apps.push(x);

    // Database Y: what an older release left behind, with data in it.
    await applyFirstMigrations(upgraded.db.url, 1);
    const oldTask = '00000000-0000-4000-8000-000000000001';
    const oldRun = '00000000-0000-4000-8000-000000000002';
    const doneTask = '00000000-0000-4000-8000-000000000003';
    const doneRun = '00000000-0000-4000-8000-000000000004';
    await upgraded.sql.query(`
      insert into durable.queues (name, created_at) values ('default', now());
      insert into durable.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry, run_id, created_at, updated_at)
      values ('${oldTask}', 'default', 'legacy', '{"n": 4}', '{"h": "old"}', 'pending', 1, 5, '{"kind": "none"}', '${oldRun}', now(), now());
      insert into durable.runs (id, task_id, queue, attempt, state, available_at, created_at)
      values ('${oldRun}', '${oldTask}', 'default', 1, 'pending', now(), now());
      insert into durable.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry, run_id, result,
        created_at, updated_at, first_started_at, finished_at)
      values ('${doneTask}', 'default', 'legacy', '{"n": 1}', '{}', 'completed', 1, 5, '{"kind": "none"}', '${doneRun}', '{"n": 3, "attempt": 1}',
        now(), now(), now(), now());
      insert into durable.runs (id, task_id, queue, attempt, state, available_at, created_at, started_at, finished_at)
      values ('${doneRun}', '${doneTask}', 'default', 1, 'completed', now(), now(), now(), now());
      insert into durable.checkpoints (task_id, name, value, attempt, created_at) values ('${doneTask}', 'step:triple', '3', 1, now());
      insert into durable.events (queue, name, payload, emitted_at, created_at) values ('default', 'old-event', '{"v": 1}', now(), now());
    `);

    const y = await startApp(upgraded.db.url, [LegacyTask]);
    apps.push(y);

    const applied = await upgraded.sql.query(`select name from durable.durable_migrations order by name`);
    expect(applied.rows.map((row) => row.name)).toEqual([...MIGRATION_NAMES].sort());
    // The pending task of the old release runs on the upgraded schema; the finished one is intact.
    await expect(y.client.awaitResult(oldTask, { timeoutMs: 15_000 })).resolves.toEqual({ n: 12, attempt: 1 });
    expect(await y.client.getTask(oldTask)).toMatchObject({ state: 'completed', headers: { h: 'old' }, params: { n: 4 } });
    expect(await y.client.getTask(doneTask)).toMatchObject({ state: 'completed', result: { n: 3, attempt: 1 } });
    // The event emitted before the upgrade still counts: a second emit changes nothing.
    await y.client.emitEvent('old-event', { v: 2 });
    const event = await upgraded.sql.query(`select payload from durable.events where queue = 'default' and name = 'old-event'`);
    expect(event.rows).toEqual([{ payload: { v: 1 } }]);

    const { taskId } = await x.client.spawn(LegacyTask, { n: 2 });
    await expect(x.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 6, attempt: 1 });

    const freshCatalog = await catalog(fresh.sql);
    const upgradedCatalog = await catalog(upgraded.sql);
    expect(freshCatalog.tables.length).toBeGreaterThanOrEqual(8);
    expect(freshCatalog.functions.length).toBeGreaterThanOrEqual(13);
    expect(upgradedCatalog).toEqual(freshCatalog);
  });

  it('every older release (each prefix of the migrations) upgrades to the same schema as a fresh database', async () => {
    const fresh = await database();
    const client = await DurableClient.connect({ databaseUrl: fresh.db.url, logger: silent });
    await client.close();
    const freshCatalog = await catalog(fresh.sql);
    for (let count = 1; count < durableMigrations.length; count++) {
      const older = await database();
      await applyFirstMigrations(older.db.url, count);
      const applied = await older.sql.query(`select name from durable.durable_migrations order by name`);
      expect(applied.rows.map((row) => row.name)).toEqual(MIGRATION_NAMES.slice(0, count).sort());
      const upgraded = await DurableClient.connect({ databaseUrl: older.db.url, logger: silent });
      await upgraded.close();
      expect({ count, catalog: await catalog(older.sql) }).toEqual({ count, catalog: freshCatalog });
      const all = await older.sql.query(`select name from durable.durable_migrations order by name`);
      expect(all.rows.map((row) => row.name)).toEqual([...MIGRATION_NAMES].sort());
    }
  });

  it('durableMigrations run by the app\'s own DataSource, then DurableModule with migrationsRun: false works', async () => {
    const own = await database();
    const reference = await database();

    const dataSource = new DataSource({
      type: 'postgres',
      url: own.db.url,
      migrations: durableMigrations,
      migrationsTableName: 'app_migrations',
    });
    dataSources.push(dataSource);
    await dataSource.initialize();
    const ran = await dataSource.runMigrations();
    expect(ran.map((migration) => migration.name)).toEqual(MIGRATION_NAMES);
    const recorded = await own.sql.query(`select name from public.app_migrations order by id`);
    expect(recorded.rows.map((row) => row.name)).toEqual(MIGRATION_NAMES);
    await expect(dataSource.runMigrations()).resolves.toEqual([]);

    const t = await startApp(own.db.url, [LegacyTask], { migrationsRun: false });
    apps.push(t);
    const { taskId } = await t.client.spawn(LegacyTask, { n: 5 });
    await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 15, attempt: 1 });
    // migrationsRun: false wrote nothing of its own.
    const tables = await own.sql.query(`select 1 from information_schema.tables where table_schema = 'durable' and table_name in ('migrations', 'durable_migrations')`);
    expect(tables.rows).toHaveLength(0);

    // The same schema as durable's own migrator creates (apart from its bookkeeping table).
    const client = await DurableClient.connect({ databaseUrl: reference.db.url, logger: silent });
    await client.close();
    expect(withoutMigrationsTable(await catalog(own.sql))).toEqual(withoutMigrationsTable(await catalog(reference.sql)));
  });

  it('durableMigrations can be reverted with TypeORM', async () => {
    const { db, sql } = await database();
    const dataSource = new DataSource({ type: 'postgres', url: db.url, migrations: durableMigrations, migrationsTableName: 'app_migrations' });
    dataSources.push(dataSource);
    await dataSource.initialize();
    await dataSource.runMigrations();
    for (let i = 0; i < durableMigrations.length; i++) await dataSource.undoLastMigration();
    const left = await catalog(sql);
    expect({ tables: left.tables, functions: left.functions.map((f) => f.proname) }).toEqual({ tables: [], functions: [] });
    expect((await sql.query(`select count(*)::int as n from public.app_migrations`)).rows[0].n).toBe(0);
  });

  it('two apps starting at once on a fresh database both start, and each migration is applied once', async () => {
    const { db, sql } = await database();
    const started = await Promise.allSettled(
      ['starter-a', 'starter-b', 'starter-c'].map((workerId) => startApp(db.url, [LegacyTask], { worker: { workerId } })),
    );
    for (const result of started) if (result.status === 'fulfilled') apps.push(result.value);
    expect(started.map((result) => (result.status === 'rejected' ? String(result.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);

    const { rows } = await sql.query(`select name, count(*)::int as n from durable.durable_migrations group by name order by name`);
    expect(rows).toEqual([...MIGRATION_NAMES].sort().map((name) => ({ name, n: 1 })));
    const { taskId } = await apps[0].client.spawn(LegacyTask, { n: 7 });
    await expect(apps[1].client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 21, attempt: 1 });
  });

  it('migrationsRun: false on an empty database fails at first use with an error, not a hang', async () => {
    const { db, sql } = await database();
    const producer = await startApp(db.url, [LegacyTask], { migrationsRun: false, worker: false });
    apps.push(producer);

    const spawn = await settleWithin(producer.client.spawn(LegacyTask, { n: 1 }), 10_000);
    expect(spawn.status).toBe('rejected');
    expect((spawn as { error: Error }).error).toBeInstanceOf(Error);
    expect((spawn as { error: Error }).error.message).toMatch(/durable/);
    const list = await settleWithin(producer.client.listTasks(), 10_000);
    expect(list.status).toBe('rejected');

    // With a worker the app starts too, keeps failing to claim without crashing, and closes.
    const withWorker = await startApp(db.url, [LegacyTask], { migrationsRun: false });
    apps.push(withWorker);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const closing = await settleWithin(apps.pop()!.close(), 10_000);
    expect(closing.status).toBe('fulfilled');

    // Nothing was created behind the user's back.
    const schemas = await sql.query(`select nspname from pg_namespace where nspname = 'durable'`);
    expect(schemas.rows).toEqual([]);
  });
});
