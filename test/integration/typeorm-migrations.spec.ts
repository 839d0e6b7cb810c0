import type pg from 'pg';
import { DataSource } from 'typeorm';
import {
  DurableClient, DurableTask, InvalidArgumentError, createDurableMigrations, durableMigrations,
  type DurableLogger, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };
const SCHEMA = 'custom_schema';
const MIGRATION_NAMES = durableMigrations.map((Migration) => new Migration().name);

@DurableTask({ name: 'custom-schema-task' })
class CustomSchemaTask implements DurableTaskHandler<{ n: number }, { n: number }> {
  async run(params: { n: number }, ctx: TaskContext) {
    const n = await ctx.step('square', () => params.n * params.n);
    return { n };
  }
}

async function objectsIn(sql: pg.Pool, schema: string) {
  const tables = await sql.query(`select table_name from information_schema.tables where table_schema = $1 order by 1`, [schema]);
  const functions = await sql.query(
    `select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = $1 order by 1`,
    [schema],
  );
  return { tables: tables.rows.map((row) => row.table_name as string), functions: functions.rows.map((row) => row.proname as string) };
}

describe('createDurableMigrations in an app\'s own TypeORM DataSource', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  const dataSources: DataSource[] = [];
  const clients: DurableClient[] = [];
  const apps: DurableTestApp[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  });
  afterAll(async () => {
    while (apps.length > 0) await apps.pop()!.close();
    for (const client of clients) await client.close();
    for (const dataSource of dataSources) if (dataSource.isInitialized) await dataSource.destroy();
    await sql?.end();
    await db?.drop();
  });

  it('returns classes TypeORM can instantiate: no arguments, bound to the schema, named like durableMigrations', () => {
    const classes = createDurableMigrations(SCHEMA);
    expect(classes).toHaveLength(durableMigrations.length);
    for (const [i, Migration] of classes.entries()) {
      expect(typeof Migration).toBe('function');
      expect(Migration.length).toBe(0);
      const migration = new Migration();
      expect(migration.name).toBe(MIGRATION_NAMES[i]);
      expect(Migration.name).toBe(MIGRATION_NAMES[i]);
      expect(migration).toBeInstanceOf(durableMigrations[i]);
      expect(typeof migration.up).toBe('function');
      expect(typeof migration.down).toBe('function');
    }
    // A bad schema name is refused when the classes are made, not when TypeORM runs them.
    expect(() => createDurableMigrations('Bad-Schema')).toThrow(InvalidArgumentError);
  });

  it('runMigrations creates the schema, durable works on it with migrationsRun: false, and undoLastMigration reverts it', async () => {
    const dataSource = new DataSource({
      type: 'postgres',
      url: db.url,
      migrations: createDurableMigrations(SCHEMA),
      migrationsTableName: 'app_migrations',
    });
    dataSources.push(dataSource);
    await dataSource.initialize();

    const ran = await dataSource.runMigrations();
    expect(ran.map((migration) => migration.name)).toEqual(MIGRATION_NAMES);
    const recorded = await sql.query(`select name from public.app_migrations order by id`);
    expect(recorded.rows.map((row) => row.name)).toEqual(MIGRATION_NAMES);
    await expect(dataSource.runMigrations()).resolves.toEqual([]);
    // Everything went into the named schema; nothing into `durable`.
    const created = await objectsIn(sql, SCHEMA);
    expect(created.tables).toEqual(expect.arrayContaining(['tasks', 'runs', 'checkpoints', 'events', 'waits', 'queues']));
    expect(created.functions).toEqual(expect.arrayContaining(['spawn_task', 'claim_tasks', 'write_batch']));
    expect(await objectsIn(sql, 'durable')).toEqual({ tables: [], functions: [] });

    // A client on that schema spawns and reads a task.
    const client = await DurableClient.connect({ databaseUrl: db.url, schema: SCHEMA, migrationsRun: false, logger: silent });
    clients.push(client);
    const { taskId } = await client.spawn(CustomSchemaTask, { n: 7 });
    expect(await client.getTask(taskId)).toMatchObject({ taskId, name: 'custom-schema-task', state: 'pending', params: { n: 7 } });
    const row = await sql.query(`select name, state from custom_schema.tasks where id = $1`, [taskId]);
    expect(row.rows).toEqual([{ name: 'custom-schema-task', state: 'pending' }]);

    // A worker on that schema runs it to the end.
    const app = await startApp(db.url, [CustomSchemaTask], { schema: SCHEMA, migrationsRun: false });
    apps.push(app);
    await expect(client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 49 });
    await apps.pop()!.close();
    // migrationsRun: false kept durable's own bookkeeping out of it: TypeORM's table is the only record.
    expect((await objectsIn(sql, SCHEMA)).tables.filter((table) => table.includes('migrations'))).toEqual([]);
    await client.close();
    clients.pop();

    // TypeORM reverts them, last first.
    for (let i = durableMigrations.length - 1; i >= 0; i--) {
      await dataSource.undoLastMigration();
      const left = await sql.query(`select name from public.app_migrations order by id`);
      expect(left.rows.map((r) => r.name)).toEqual(MIGRATION_NAMES.slice(0, i));
    }
    expect(await objectsIn(sql, SCHEMA)).toEqual({ tables: [], functions: [] });
  });
});
