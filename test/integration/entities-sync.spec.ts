import type pg from 'pg';
import { DataSource, EntitySchema } from 'typeorm';
import { createDurableEntities, DurableClient, type DurableLogger } from '../../lib/index.js';
import { dumpSchema } from '../../devkit/index.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };

/** An entity of the app's own, beside durable's: the schema builder has real work to do. */
interface Note {
  id: number;
  body: string;
}
const AppNote = new EntitySchema<Note>({
  name: 'AppNote',
  tableName: 'app_notes',
  columns: {
    id: { type: 'integer', primary: true, generated: 'increment' },
    body: { type: 'text' },
  },
  indices: [{ name: 'app_notes_body', columns: ['body'] }],
});

/** The statements of a schema-builder plan that name one schema. */
function touching(queries: { query: string }[], schema: string): string[] {
  const named = new RegExp(`(^|[^a-z0-9_])"?${schema}"?\\.`, 'i');
  return queries.map((q) => q.query).filter((query) => named.test(query));
}

describe.each(['durable', 'durable_sync'])('createDurableEntities(%s) and TypeORM schema synchronisation', (schema) => {
  let db: TestDatabase;
  let sql: pg.Pool;
  const dataSources: DataSource[] = [];
  const entities = () => [...Object.values(createDurableEntities(schema)), AppNote];

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    const client = await DurableClient.connect({ databaseUrl: db.url, schema, logger: silent });
    await client.close();
  });
  afterEach(async () => {
    for (const dataSource of dataSources.splice(0)) if (dataSource.isInitialized) await dataSource.destroy();
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it('the schema builder (schema:log, migration:generate) plans nothing on durable\'s tables, only the app\'s own', async () => {
    const dataSource = new DataSource({ type: 'postgres', url: db.url, entities: entities() });
    dataSources.push(dataSource);
    await dataSource.initialize();
    const plan = await dataSource.driver.createSchemaBuilder().log();
    expect(touching(plan.upQueries, schema)).toEqual([]);
    expect(touching(plan.downQueries, schema)).toEqual([]);
    // The builder did run: it plans the app's table.
    expect(plan.upQueries.map((q) => q.query).some((query) => /CREATE TABLE "app_notes"/.test(query))).toBe(true);
  });

  it('synchronize: true creates the app\'s tables and leaves durable\'s schema as durable made it; durable still works', async () => {
    const before = await dumpSchema(sql, schema);
    for (const index of ['tasks_idempotency_key', 'runs_claim_priority']) expect(before).toContain(`INDEX ${index} ON ${schema}.`);
    for (const key of ['runs_task_id_fkey', 'checkpoints_task_id_fkey', 'waits_run_id_fkey']) expect(before).toContain(`constraint ${key} FOREIGN KEY`);

    const dataSource = new DataSource({ type: 'postgres', url: db.url, entities: entities(), synchronize: true });
    dataSources.push(dataSource);
    await dataSource.initialize();

    expect(await dumpSchema(sql, schema)).toEqual(before);
    const app = await sql.query(`select 1 from information_schema.tables where table_schema = 'public' and table_name = 'app_notes'`);
    expect(app.rows).toHaveLength(1);
    // Synchronised: nothing left to plan at all.
    expect((await dataSource.driver.createSchemaBuilder().log()).upQueries).toEqual([]);

    // The entities read what durable writes, and durable's keys still hold (idempotency, cascades).
    const client = await DurableClient.connect({ databaseUrl: db.url, schema, logger: silent, migrationsRun: false });
    try {
      const first = await client.spawn('sync-task', { n: 1 }, { idempotencyKey: 'once' });
      const again = await client.spawn('sync-task', { n: 2 }, { idempotencyKey: 'once' });
      expect(again.taskId).toBe(first.taskId);
      const { task, run } = createDurableEntities(schema);
      expect(await dataSource.getRepository(task).findOneByOrFail({ id: first.taskId })).toMatchObject({ name: 'sync-task', params: { n: 1 } });
      expect(await dataSource.getRepository(run).countBy({ taskId: first.taskId })).toBe(1);
      await sql.query(`delete from "${schema}".tasks where id = $1`, [first.taskId]);
      expect(await dataSource.getRepository(run).countBy({ taskId: first.taskId })).toBe(0);
    } finally {
      await client.close();
    }
  });
});
