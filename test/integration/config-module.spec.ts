/**
 * The README's `forRootAsync` example with `@nestjs/config`, booted as written: options come
 * from ConfigService, a string number is converted, and a worker with those options runs tasks.
 */
import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test } from '@nestjs/testing';
import {
  DurableClient, DurableModule, DurableTask, DurableWorkerMonitor, InvalidArgumentError,
  type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

@DurableTask({ name: 'configured' })
class ConfiguredTask implements DurableTaskHandler<{ n: number }, number> {
  run(params: { n: number }, ctx: TaskContext) {
    return ctx.step('double', () => params.n * 2);
  }
}

function appModule(env: Record<string, string>) {
  @Module({
    imports: [
      ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => env] }),
      DurableModule.forRootAsync({
        imports: [ConfigModule],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => ({
          databaseUrl: config.getOrThrow<string>('DATABASE_URL'),
          worker: { concurrency: Number(config.get('DURABLE_CONCURRENCY') ?? 10) },
        }),
      }),
    ],
    providers: [ConfiguredTask],
  })
  class AppModule {}
  return AppModule;
}

describe('DurableModule.forRootAsync with @nestjs/config (the README example)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('takes its options from ConfigService and runs tasks', async () => {
    const moduleRef = await Test.createTestingModule({ imports: [appModule({ DATABASE_URL: db.url, DURABLE_CONCURRENCY: '3' })] }).compile();
    moduleRef.useLogger(false);
    const app = await moduleRef.init();
    try {
      expect(app.get(DurableWorkerMonitor).status()).toMatchObject({ state: 'running', concurrency: 3 });
      const client = app.get(DurableClient);
      const { taskId } = await client.spawn(ConfiguredTask, { n: 21 });
      await expect(client.awaitResult(taskId, { timeoutMs: 10_000 })).resolves.toBe(42);
    } finally {
      await app.close();
    }
  });

  it('refuses a value that is not a number, naming the option', async () => {
    const start = Test.createTestingModule({ imports: [appModule({ DATABASE_URL: db.url, DURABLE_CONCURRENCY: 'many' })] }).compile();
    await expect(start).rejects.toThrow(InvalidArgumentError);
    await expect(Test.createTestingModule({ imports: [appModule({ DATABASE_URL: db.url, DURABLE_CONCURRENCY: 'many' })] }).compile())
      .rejects.toThrow(/worker\.concurrency must be an integer/);
  });
});
