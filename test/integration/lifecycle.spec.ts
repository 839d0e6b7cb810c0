/**
 * Durable among the app's own modules: a failed start-up closes what durable opened; close()
 * drains the worker before any of the app's providers is destroyed, and does not hang when the
 * app destroys its own DataSource first; the connection closes last.
 */
import { Module, type DynamicModule, type INestApplicationContext, type LoggerService, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import { DurableClient, DurableModule, DurableWorkerMonitor, type DurableModuleOptions } from '../../lib/index.js';
import {
  APP_DATA_SOURCE, appDatabaseModule, EchoTask, events, FirstTwin, Gate, gates, HandlerWithoutRun, mailApp, SecondTwin,
  SpawnOnInit, TickingTask,
} from '../fixtures/lifecycle-app.js';
import { eventually, sleep, sqlPool } from '../helpers/durable-app.js';
import { adminUrl, createTestDatabase, durableConnections, type TestDatabase } from '../helpers/test-database.js';

const silentNest: LoggerService = { log() {}, error() {}, warn() {}, debug() {}, verbose() {} };
const KINDS = ['createApplicationContext', 'create (HTTP)', 'testing module'] as const;
type Kind = (typeof KINDS)[number];

/** Starts `module` the way `kind` says; an app that fails to start is not closed (as in a retry loop). */
async function boot(kind: Kind, module: Type): Promise<INestApplicationContext> {
  if (kind === 'createApplicationContext') return NestFactory.createApplicationContext(module, { logger: false, abortOnError: false });
  if (kind === 'create (HTTP)') return (await NestFactory.create(module, { logger: false, abortOnError: false })).init();
  const moduleRef = await Test.createTestingModule({ imports: [module] }).setLogger(silentNest).compile();
  return moduleRef.init();
}

function rootOf(imports: DynamicModule[], providers: Type[]): Type {
  @Module({ imports, providers })
  class AppModule {}
  return AppModule;
}

/** Resolves with the promise's value, or fails the test with `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hung]);
  } finally {
    clearTimeout(timer);
  }
}

const worker = { pollIntervalMs: 200 };
let db: TestDatabase;
let admin: pg.Pool;
let sql: pg.Pool;

/** Every connection to the test database but this spec's own. */
async function appConnections(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where datname = $1 and application_name <> 'lifecycle-check'`,
    [db.name],
  );
  return rows[0].n;
}

beforeAll(async () => {
  admin = sqlPool(adminUrl());
  db = await createTestDatabase();
  sql = sqlPool(db.url, { applicationName: 'lifecycle-check' });
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
  await admin?.end();
});
beforeEach(() => {
  events.length = 0;
});

describe('a failed start-up', () => {
  it.each([
    ['createApplicationContext', [HandlerWithoutRun], /HandlerWithoutRun/],
    ['testing module', [FirstTwin, SecondTwin], /FirstTwin|SecondTwin/],
    ['create (HTTP)', [HandlerWithoutRun], /HandlerWithoutRun/],
  ] as [Kind, Type[], RegExp][])('(%s, a refused handler) leaves no durable connection behind', async (kind, handlers, refusal) => {
    const baseline = await durableConnections(admin, db.name);
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(boot(kind, rootOf([DurableModule.forRoot({ databaseUrl: db.url, worker })], handlers))).rejects.toThrow(refusal);
    }
    // pg closes idle pooled connections after 10 s by itself: a leak shows well before.
    await eventually(async () => (await durableConnections(admin, db.name)) === baseline, 2000, `durable connections back to ${baseline}`);
  });
});

describe('an app that destroys its own DataSource before durable closes', () => {
  const cases: [string, () => DynamicModule[]][] = [
    ['in its onModuleDestroy', () => ownDataSource('onModuleDestroy')],
    ['in its onApplicationShutdown', () => ownDataSource('onApplicationShutdown')],
    ['through @nestjs/typeorm, imported after DurableModule', () => [
      DurableModule.forRootAsync({ inject: [DataSource], useFactory: (dataSource: DataSource) => ({ dataSource, worker }) }),
      TypeOrmModule.forRoot({ type: 'postgres', url: db.url, applicationName: 'lifecycle-app' }),
    ]],
  ];
  function ownDataSource(hook: 'onModuleDestroy' | 'onApplicationShutdown'): DynamicModule[] {
    const database = appDatabaseModule(db.url, hook);
    return [database, DurableModule.forRootAsync({
      imports: [database], inject: [APP_DATA_SOURCE], useFactory: (dataSource: DataSource) => ({ dataSource, worker }),
    })];
  }

  it.each(cases)('%s: app.close() resolves and leaves no connection open', async (_name, imports) => {
    const app = await boot('createApplicationContext', rootOf(imports(), [EchoTask]));
    const client = app.get(DurableClient);
    const { taskId } = await client.spawn(EchoTask, { hello: 'world' });
    await expect(client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ hello: 'world' });

    await within(app.close(), 5000, 'app.close() (the app destroyed its DataSource while durable held one of its clients)');
    await eventually(async () => (await appConnections()) === 0, 3000, 'no connection (pool or LISTEN) left open');
  });
});

describe('closing drains the worker before the app\'s own providers are destroyed', () => {
  const cases: [Kind, 'forRoot' | 'forRootAsync'][] = [
    ['createApplicationContext', 'forRoot'], ['create (HTTP)', 'forRoot'], ['testing module', 'forRoot'], ['createApplicationContext', 'forRootAsync'],
  ];
  const durable = (how: 'forRoot' | 'forRootAsync', options: DurableModuleOptions = {}) => {
    const all = { databaseUrl: db.url, worker: { queues: ['mail'], pollIntervalMs: 200 }, ...options };
    return how === 'forRoot' ? DurableModule.forRoot(all) : DurableModule.forRootAsync({ useFactory: () => all });
  };

  it.each(cases)('%s, %s: a handler still running at close() uses the mailer before it closes', async (kind, how) => {
    gates.mail = new Gate();
    SpawnOnInit.taskId = undefined;
    const app = await boot(kind, mailApp(durable(how)));
    const taskId = SpawnOnInit.taskId!;
    // Spawned by name in a user onModuleInit, onto the queue its @DurableTask names.
    expect((await sql.query(`select queue from durable.tasks where id = $1`, [taskId])).rows).toEqual([{ queue: 'mail' }]);
    await eventually(() => events.includes('step started'), 10_000, 'the handler to enter its long step');

    const monitor = app.get(DurableWorkerMonitor);
    const closing = within(app.close(), 15_000, 'app.close()');
    await eventually(() => monitor.status().state === 'stopping', 5000, 'the worker to drain');
    await sleep(300);
    gates.mail.open();
    await closing;

    expect(events).toEqual([
      'spawned on init', 'app bootstrap, worker created', // the worker starts after the app's own bootstrap hooks
      'step started', 'step released', 'mail sent to ada', 'mailer destroyed',
    ]);
    const { rows } = await sql.query(`select state, result from durable.tasks where id = $1`, [taskId]);
    expect(rows).toEqual([{ state: 'completed', result: { sent: 'sent to ada' } }]);
    await eventually(async () => (await durableConnections(admin, db.name)) === 0, 3000, 'no durable connection after close');
  });

  it('worker: false: spawns on init, never starts a worker, and closes', async () => {
    SpawnOnInit.taskId = undefined;
    const app = await boot('createApplicationContext', mailApp(durable('forRoot', { worker: false })));
    await sleep(600);
    expect(app.get(DurableWorkerMonitor).status().state).toBe('none');
    const { rows } = await sql.query(`select state, queue from durable.tasks where id = $1`, [SpawnOnInit.taskId]);
    expect(rows).toEqual([{ state: 'pending', queue: 'mail' }]);
    await app.get(DurableClient).cancel(SpawnOnInit.taskId!);
    await within(app.close(), 5000, 'app.close()');
    expect(events).toEqual(['spawned on init', 'app bootstrap, worker none', 'mailer destroyed']);
  });

  it('a cancellation still reaches a handler that is draining', async () => {
    const app = await boot('createApplicationContext', rootOf([DurableModule.forRoot({ databaseUrl: db.url, worker: { ...worker, shutdownTimeoutMs: 30_000 } })], [TickingTask]));
    const client = app.get(DurableClient);
    const { taskId } = await client.spawn(TickingTask, {});
    await eventually(() => events.includes('ticking'), 10_000, 'the handler to start');
    const closing = within(app.close(), 10_000, 'app.close() after the cancellation');
    await eventually(() => app.get(DurableWorkerMonitor).status().state === 'stopping', 5000, 'the worker to drain');
    await client.cancel(taskId);
    await closing;
    expect((await sql.query(`select state from durable.tasks where id = $1`, [taskId])).rows).toEqual([{ state: 'cancelled' }]);
  });
});
