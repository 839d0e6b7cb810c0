// The oldest peers the package claims (run by test/packaging/oldest-peers/check.sh, from .ci/run):
// plain JavaScript in a folder where the packed package sits beside @nestjs/* 11.0 and
// typeorm 0.3. It reuses the app's TypeORM DataSource (with durable's entities), runs a task
// with a step and an event, reads it back through an entity, and closes.
//
//   node app.mjs <databaseUrl>
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { DurableClient, DurableModule, DurableTask, createDurableEntities, createDurableMigrations } from 'nestjs-durable';

const databaseUrl = process.argv[2];
const entities = createDurableEntities();
const dataSource = new DataSource({
  type: 'postgres', url: databaseUrl, entities: Object.values(entities),
  migrations: createDurableMigrations('durable'), migrationsTableName: 'app_migrations',
});
await dataSource.initialize();
await dataSource.runMigrations();

class PeerTask {
  async run(params, ctx) {
    const doubled = await ctx.step('double', () => params.n * 2);
    const { bonus } = await ctx.awaitEvent('bonus', { timeoutMs: 20_000 });
    return { total: doubled + bonus };
  }
}
DurableTask({ name: 'peer-task' })(PeerTask);

class AppModule {}
Module({
  imports: [DurableModule.forRoot({ dataSource, migrationsRun: false, worker: { pollIntervalMs: 100 } })],
  providers: [PeerTask],
})(AppModule);

const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error'] });
const client = app.get(DurableClient);
const { taskId } = await client.spawn(PeerTask, { n: 20 });
await client.emitEvent('bonus', { bonus: 2 });
const result = await client.awaitResult(taskId, { timeoutMs: 20_000 });
const row = await dataSource.getRepository(entities.task).findOneByOrFail({ id: taskId });
const schemaPlan = await dataSource.driver.createSchemaBuilder().log();
await app.close();
await dataSource.destroy();

const versions = {
  nest: JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(new URL('./node_modules/@nestjs/core/package.json', import.meta.url), 'utf8'))).version,
  typeorm: JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(new URL('./node_modules/typeorm/package.json', import.meta.url), 'utf8'))).version,
};
const ok = result.total === 42 && row.state === 'completed' && schemaPlan.upQueries.length === 0;
process.stdout.write(`${JSON.stringify({ ok, versions, result, state: row.state, plannedQueries: schemaPlan.upQueries.length })}\n`);
process.exitCode = ok ? 0 : 1;
