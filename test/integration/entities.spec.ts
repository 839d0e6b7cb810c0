import type pg from 'pg';
import { DataSource } from 'typeorm';
import { createDurableEntities, DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

@DurableTask({ name: 'entity-task' })
class EntityTask implements DurableTaskHandler<{ b: number; a: number }, { done: boolean }> {
  async run(params: { b: number; a: number }, ctx: TaskContext) {
    await ctx.step('first', () => ({ z: params.b, y: params.a }));
    return { done: true };
  }
}

describe('TypeORM entities of durable tables', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let dataSource: DataSource;
  const entities = createDurableEntities('durable');

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [EntityTask]);
    dataSource = new DataSource({ type: 'postgres', url: db.url, entities: Object.values(entities) });
    await dataSource.initialize();
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await t?.close();
    await db?.drop();
  });

  it('map every column of the migrated tables with its type and nullability', async () => {
    for (const entity of Object.values(entities)) {
      const metadata = dataSource.getMetadata(entity);
      const { rows } = await (dataSource.driver as unknown as { master: pg.Pool }).master.query(
        `select column_name, is_nullable, data_type from information_schema.columns
         where table_schema = 'durable' and table_name = $1 order by column_name`,
        [metadata.tableName],
      );
      const mapped = metadata.columns
        .map((column) => ({
          column_name: column.databaseName,
          is_nullable: column.isNullable ? 'YES' : 'NO',
          data_type: column.isArray ? 'ARRAY' : column.type === 'timestamp with time zone' ? 'timestamp with time zone' : String(column.type),
        }))
        .sort((x, y) => x.column_name.localeCompare(y.column_name));
      expect({ table: metadata.tableName, columns: mapped }).toEqual({ table: metadata.tableName, columns: rows });
    }
  });

  it('are left alone by TypeORM\'s schema builder (synchronize: false; test/integration/entities-sync.spec.ts shows why)', () => {
    for (const entity of Object.values(entities)) expect({ entity: entity.options.name, synchronize: dataSource.getMetadata(entity).synchronize })
      .toEqual({ entity: entity.options.name, synchronize: false });
  });

  it('read what the client wrote: a task, its runs and its checkpoints, through repositories', async () => {
    const { taskId, runId } = await t.client.spawn(EntityTask, { b: 2, a: 1 }, { headers: { trace: 'x' } });
    await t.client.awaitResult(taskId, { timeoutMs: 10_000 });
    const task = await dataSource.getRepository(entities.task).findOneByOrFail({ id: taskId });
    expect(task).toMatchObject({
      id: taskId, name: 'entity-task', queue: 'default', state: 'completed', attempts: 1, runId,
      params: { b: 2, a: 1 }, headers: { trace: 'x' }, result: { done: true }, error: null,
    });
    expect(Object.keys(task.params as object)).toEqual(['b', 'a']);
    expect(task.finishedAt).toBeInstanceOf(Date);
    const runs = await dataSource.getRepository(entities.run).findBy({ taskId });
    expect(runs.map((run) => [run.attempt, run.state])).toEqual([[1, 'completed']]);
    const checkpoints = await dataSource.getRepository(entities.checkpoint).findBy({ taskId });
    expect(checkpoints.map((row) => [row.name, row.value])).toEqual([['step:first', { z: 2, y: 1 }]]);
    expect(await t.client.getTask(taskId)).toMatchObject({ state: task.state, attempts: task.attempts, result: task.result });
  });
});
