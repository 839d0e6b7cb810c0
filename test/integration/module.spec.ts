import { Injectable, Module, type DynamicModule, type LoggerService, type Provider } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import type pg from 'pg';
import { DataSource } from 'typeorm';
import {
  DurableClient, DurableError, DurableModule, DurableTask, InvalidArgumentError,
  type DurableLogger, type DurableModuleOptions, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { TcpProxy } from '../../devkit/tcp-proxy.js';
import { advanceClock, eventually, LISTEN_CONNECTION, sleep, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { runFixture } from '../helpers/run-fixture.js';
import { adminUrl, createTestDatabase, durableConnections, type TestDatabase } from '../helpers/test-database.js';

/** Nothing listens on port 1: connecting fails at once. */
const CLOSED_URL = 'postgres://durable:s3cr3t-pw@127.0.0.1:1/nowhere';

const silentNest: LoggerService = { log() {}, error() {}, warn() {}, debug() {}, verbose() {} };
const silent: DurableLogger = { log() {}, warn() {}, error() {} };

// ---------------------------------------------------------------------------------------------
// Handlers and services
// ---------------------------------------------------------------------------------------------

@Injectable()
class GreeterService {
  readonly calls: string[] = [];
  greet(who: string): string {
    this.calls.push(who);
    return `hello ${who}`;
  }
}

@DurableTask({ name: 'greet' })
class GreetTask implements DurableTaskHandler<{ who: string }, { greeting: string; attempt: number }> {
  constructor(private readonly greeter: GreeterService) {}

  async run(params: { who: string }, ctx: TaskContext) {
    const greeting = await ctx.step('greet', () => this.greeter.greet(params.who));
    return { greeting, attempt: ctx.attempt };
  }
}

/** A plain provider that only wants the client. */
@Injectable()
class SignupService {
  constructor(readonly client: DurableClient) {}

  async signup(who: string): Promise<string> {
    return (await this.client.spawn(GreetTask, { who })).taskId;
  }
}

@DurableTask({ name: 'echo' })
class EchoTask implements DurableTaskHandler<unknown, { echo: unknown; queue: string }> {
  async run(params: unknown, ctx: TaskContext) {
    return { echo: params, queue: ctx.queue };
  }
}

@DurableTask({ name: 'no-run' })
class HandlerWithoutRun {
  handle(): string {
    return 'not run';
  }
}

@DurableTask({ name: 'twin' })
class FirstTwinTask implements DurableTaskHandler<unknown, string> {
  async run() {
    return 'first';
  }
}

@DurableTask({ name: 'twin' })
class SecondTwinTask implements DurableTaskHandler<unknown, string> {
  async run() {
    return 'second';
  }
}

@DurableTask({ name: 'same-name', queue: 'queue-a' })
class SameNameOnQueueA implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    return `A on ${ctx.queue}`;
  }
}

@DurableTask({ name: 'same-name', queue: 'queue-b' })
class SameNameOnQueueB implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    return `B on ${ctx.queue}`;
  }
}

/** Counts executions in this process. */
const parked = { executions: 0 };
@DurableTask({ name: 'parked' })
class ParkedTask implements DurableTaskHandler<{ n: number }, { n: number }> {
  async run(params: { n: number }) {
    parked.executions += 1;
    return { n: params.n };
  }
}

/** A handler that blocks until the test opens the gate, and tracks how many run at once. */
class Gate {
  current = 0;
  max = 0;
  started = 0;
  private openGate!: () => void;
  opened = new Promise<void>((resolve) => (this.openGate = resolve));
  open(): void {
    this.openGate();
  }
}
let gate = new Gate();

@DurableTask({ name: 'blocking' })
class BlockingTask implements DurableTaskHandler<{ i: number }, { i: number }> {
  async run(params: { i: number }) {
    gate.current += 1;
    gate.started += 1;
    gate.max = Math.max(gate.max, gate.current);
    try {
      await gate.opened;
      await sleep(20);
    } finally {
      gate.current -= 1;
    }
    return { i: params.i };
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async function boot(imports: DynamicModule[], providers: Provider[] = []): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({ imports, providers })
    .setLogger(process.env.DURABLE_TEST_LOGS ? console : silentNest)
    .compile();
  return moduleRef.init();
}

/** Boots an app that must fail to start; returns the error and closes whatever was opened. */
async function startupError(imports: DynamicModule[], providers: Provider[] = []): Promise<Error> {
  let moduleRef: TestingModule | undefined;
  try {
    moduleRef = await Test.createTestingModule({ imports, providers })
      .setLogger(process.env.DURABLE_TEST_LOGS ? console : silentNest)
      .compile();
    await moduleRef.init();
  } catch (error) {
    await moduleRef?.close();
    return error as Error;
  }
  await moduleRef.close();
  throw new Error('the application started, but a startup error was expected');
}

function forRoot(options: DurableModuleOptions): DynamicModule {
  return DurableModule.forRoot({
    ...options,
    worker: options.worker === false ? false : { pollIntervalMs: 200, ...options.worker },
  });
}

async function withoutEnvUrl<T>(fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DURABLE_DATABASE_URL;
  delete process.env.DURABLE_DATABASE_URL;
  try {
    return await fn();
  } finally {
    if (saved !== undefined) process.env.DURABLE_DATABASE_URL = saved;
  }
}

let admin: pg.Pool;
beforeAll(() => {
  admin = sqlPool(adminUrl());
});
afterAll(async () => {
  await admin.end();
});

// ---------------------------------------------------------------------------------------------

describe('DurableModule.forRoot / forRootAsync', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  });
  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it('runs a handler with a constructor-injected service, and injects DurableClient into other providers', async () => {
    moduleRef = await boot([forRoot({ databaseUrl: db.url })], [GreeterService, GreetTask, SignupService]);
    const signup = moduleRef.get(SignupService);
    const client = moduleRef.get(DurableClient);
    expect(signup.client).toBe(client);

    const taskId = await signup.signup('ada');
    await expect(client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ greeting: 'hello ada', attempt: 1 });
    // The handler instance is the provider Nest built, with the same GreeterService singleton.
    expect(moduleRef.get(GreeterService).calls).toEqual(['ada']);
    expect(moduleRef.get(GreetTask)).toBeInstanceOf(GreetTask);

    const { rows } = await sql.query(
      `select t.name, t.queue, t.state, c.name as checkpoint, c.value from durable.tasks t
       join durable.checkpoints c on c.task_id = t.id where t.id = $1`,
      [taskId],
    );
    expect(rows).toEqual([{ name: 'greet', queue: 'default', state: 'completed', checkpoint: 'step:greet', value: 'hello ada' }]);
  });

  it('forRootAsync({ imports, inject, useFactory }) takes its options from a config provider', async () => {
    const CONFIG = Symbol('CONFIG');
    interface AppConfig {
      durableUrl: string;
      durableQueue: string;
    }
    @Module({})
    class ConfigModule {
      static with(config: AppConfig): DynamicModule {
        return { module: ConfigModule, providers: [{ provide: CONFIG, useValue: config }], exports: [CONFIG] };
      }
    }
    const factoryCalls: AppConfig[] = [];
    moduleRef = await boot(
      [
        DurableModule.forRootAsync({
          imports: [ConfigModule.with({ durableUrl: db.url, durableQueue: 'async-queue' })],
          inject: [CONFIG],
          useFactory: (config: AppConfig): DurableModuleOptions => {
            factoryCalls.push(config);
            return { databaseUrl: config.durableUrl, queue: config.durableQueue, worker: { pollIntervalMs: 200 } };
          },
        }),
      ],
      [EchoTask],
    );
    expect(factoryCalls).toEqual([{ durableUrl: db.url, durableQueue: 'async-queue' }]);
    const client = moduleRef.get(DurableClient);
    const spawned = await client.spawn(EchoTask, { via: 'async' });
    // The queue option from the factory is the default queue of spawn, handler and worker.
    await expect(client.awaitResult(spawned.taskId, { timeoutMs: 15_000 })).resolves.toEqual({
      echo: { via: 'async' },
      queue: 'async-queue',
    });
    const { rows } = await sql.query(`select queue, state from durable.tasks where id = $1`, [spawned.taskId]);
    expect(rows).toEqual([{ queue: 'async-queue', state: 'completed' }]);
  });

  it('allows one task name on two different queues, and routes each to its own handler', async () => {
    moduleRef = await boot(
      [forRoot({ databaseUrl: db.url, worker: { queues: ['queue-a', 'queue-b'] } })],
      [SameNameOnQueueA, SameNameOnQueueB],
    );
    const client = moduleRef.get(DurableClient);
    const a = await client.spawn(SameNameOnQueueA, {});
    const b = await client.spawn(SameNameOnQueueB, {});
    const byName = await client.spawn('same-name', {}, { queue: 'queue-b' });
    await expect(client.awaitResult(a.taskId, { timeoutMs: 15_000 })).resolves.toBe('A on queue-a');
    await expect(client.awaitResult(b.taskId, { timeoutMs: 15_000 })).resolves.toBe('B on queue-b');
    await expect(client.awaitResult(byName.taskId, { timeoutMs: 15_000 })).resolves.toBe('B on queue-b');
  });
});

describe('startup errors', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('refuses a @DurableTask class without a run method, naming the class', async () => {
    const error = await startupError([forRoot({ databaseUrl: db.url })], [HandlerWithoutRun]);
    expect(error).toBeInstanceOf(DurableError);
    expect(error.message).toContain('HandlerWithoutRun');
    expect(error.message).toMatch(/run/);
    // The failed start left no connection behind once closed.
    await eventually(async () => (await durableConnections(admin, db.name)) === 0, 10_000, 'no durable connections');
  });

  it('refuses two handlers with one name on one queue, naming both classes', async () => {
    const error = await startupError([forRoot({ databaseUrl: db.url })], [FirstTwinTask, SecondTwinTask]);
    expect(error).toBeInstanceOf(DurableError);
    expect(error.message).toContain('FirstTwinTask');
    expect(error.message).toContain('SecondTwinTask');
    expect(error.message).toContain('twin');
  });

  it('says how to configure the database when there is no databaseUrl, no DURABLE_DATABASE_URL and no dataSource', async () => {
    await withoutEnvUrl(async () => {
      const error = await startupError([forRoot({})], [EchoTask]);
      expect(error).toBeInstanceOf(DurableError);
      expect(error.message).toContain('databaseUrl');
      expect(error.message).toContain('DURABLE_DATABASE_URL');
      expect(error.message).toContain('dataSource');

      const standalone = await DurableClient.connect({ logger: silent }).then(
        async (client) => {
          await client.close();
          return undefined;
        },
        (e: unknown) => e as Error,
      );
      expect(standalone).toBeInstanceOf(DurableError);
      expect(standalone?.message).toContain('DURABLE_DATABASE_URL');
    });
  });

  it('uses DURABLE_DATABASE_URL when databaseUrl is not set', async () => {
    const saved = process.env.DURABLE_DATABASE_URL;
    process.env.DURABLE_DATABASE_URL = db.url;
    let moduleRef: TestingModule | undefined;
    try {
      moduleRef = await boot([forRoot({})], [EchoTask]);
      const client = moduleRef.get(DurableClient);
      const { taskId } = await client.spawn(EchoTask, 'from env');
      await expect(client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ echo: 'from env', queue: 'default' });
    } finally {
      await moduleRef?.close();
      if (saved === undefined) delete process.env.DURABLE_DATABASE_URL;
      else process.env.DURABLE_DATABASE_URL = saved;
    }
  });

  it.each(['bad-name', 'x; drop', 'Durable', ''])('refuses the schema name %j with InvalidArgumentError before connecting', async (schema) => {
    // The URL points at a closed port: had durable connected first, this would be a connection error.
    const error = await startupError([forRoot({ databaseUrl: CLOSED_URL, schema })], [EchoTask]);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toContain('schema');

    await expect(DurableClient.connect({ databaseUrl: CLOSED_URL, schema, logger: silent })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it.each([
    ['worker.concurrency', { worker: { concurrency: 0 } }],
    ['worker.leaseMs', { worker: { leaseMs: -1 } }],
    ['worker.pollIntervalMs', { worker: { pollIntervalMs: Number.NaN } }],
    ['maxPayloadBytes', { maxPayloadBytes: 0 }],
    ['maxAttempts', { defaults: { maxAttempts: 0 } }],
    ['queue', { queue: '' }],
  ] as [string, DurableModuleOptions][])('refuses a bad %s with InvalidArgumentError naming it, before connecting', async (option, options) => {
    const error = await startupError([DurableModule.forRoot({ databaseUrl: CLOSED_URL, ...options })], [EchoTask]);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toContain(option);
  });

  // poolSize 0 leaves durable a pool of one connection, which its LISTEN takes: every call then
  // waits forever for a connection. Nonsense sizes must be refused like any other bad option.
  it.each([0, -1, 1.5])('refuses poolSize %p with InvalidArgumentError naming it, before connecting', async (poolSize) => {
    const error = await startupError([forRoot({ databaseUrl: CLOSED_URL, poolSize })], [EchoTask]);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toContain('poolSize');
  });

  it('refuses a dataSource that is not initialized', async () => {
    const dataSource = new DataSource({ type: 'postgres', url: db.url });
    const error = await startupError([forRoot({ dataSource })], [EchoTask]);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toContain('dataSource');
    expect(dataSource.isInitialized).toBe(false);
  });
});

describe('an existing TypeORM dataSource', () => {
  let db: TestDatabase;
  let dataSource: DataSource | undefined;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await moduleRef?.close();
    if (dataSource?.isInitialized) await dataSource.destroy();
    await db?.drop();
  });

  it('is used to run tasks and is still initialized and usable after app.close()', async () => {
    dataSource = new DataSource({ type: 'postgres', url: db.url, poolSize: 6 });
    await dataSource.initialize();

    await withoutEnvUrl(async () => {
      moduleRef = await boot([forRoot({ dataSource })], [EchoTask]);
    });
    const client = moduleRef!.get(DurableClient);
    const { taskId } = await client.spawn(EchoTask, { through: 'dataSource' });
    await expect(client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ echo: { through: 'dataSource' }, queue: 'default' });
    // Durable's tables were created through the app's data source, and no pool of its own was opened.
    expect(await dataSource.query(`select state from durable.tasks where id = $1`, [taskId])).toEqual([{ state: 'completed' }]);
    expect(await durableConnections(admin, db.name)).toBe(0);

    await moduleRef!.close();
    moduleRef = undefined;

    expect(dataSource.isInitialized).toBe(true);
    expect(await dataSource.query('select 1 as one')).toEqual([{ one: 1 }]);
    // Durable gave back every connection it borrowed: none is checked out, and its LISTEN is gone.
    const pool = (dataSource.driver as unknown as { master: pg.Pool }).master;
    expect(pool.totalCount - pool.idleCount).toBe(0);
    await eventually(
      async () => {
        const { rows } = await admin.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = $1 and ${LISTEN_CONNECTION}`,
          [db.name],
        );
        return rows[0].n === 0;
      },
      10_000,
      'the LISTEN connection to end',
    );

    await dataSource.destroy();
    expect(dataSource.isInitialized).toBe(false);
  });
});

describe('worker options', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  const apps: DurableTestApp[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  });
  afterEach(async () => {
    gate.open();
    while (apps.length > 0) await apps.pop()!.close();
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it('worker: false spawns but executes nothing; a second app with a worker runs the task', async () => {
    parked.executions = 0;
    const producer = await startApp(db.url, [ParkedTask], { worker: false });
    apps.push(producer);
    const { taskId } = await producer.client.spawn(ParkedTask, { n: 5 });

    // Several poll intervals of a would-be worker (200 ms in tests) pass without a claim.
    await sleep(1200);
    expect(parked.executions).toBe(0);
    const before = await sql.query(`select t.state, r.state as run_state, r.worker_id from durable.tasks t join durable.runs r on r.task_id = t.id where t.id = $1`, [taskId]);
    expect(before.rows).toEqual([{ state: 'pending', run_state: 'pending', worker_id: null }]);

    const consumer = await startApp(db.url, [ParkedTask], { worker: { workerId: 'consumer-worker' } });
    apps.push(consumer);
    await expect(producer.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ n: 5 });
    expect(parked.executions).toBe(1);
    const after = await sql.query(`select r.state, r.worker_id from durable.runs r where r.task_id = $1`, [taskId]);
    expect(after.rows).toEqual([{ state: 'completed', worker_id: 'consumer-worker' }]);
  });

  it('never runs more than `concurrency` handlers at once', async () => {
    gate = new Gate();
    const t = await startApp(db.url, [BlockingTask], { worker: { concurrency: 3, pollIntervalMs: 100 } });
    apps.push(t);
    const ids: string[] = [];
    for (let i = 0; i < 9; i++) ids.push((await t.client.spawn(BlockingTask, { i })).taskId);

    await eventually(() => gate.current === 3, 15_000, 'three blocked handlers');
    // Give the worker many polls to (wrongly) claim more.
    await sleep(800);
    expect(gate.current).toBe(3);
    expect(gate.started).toBe(3);
    const states = await sql.query(
      `select state, count(*)::int as n from durable.tasks where id = any($1) group by state order by state`,
      [ids],
    );
    expect(states.rows).toEqual([{ state: 'pending', n: 6 }, { state: 'running', n: 3 }]);

    gate.open();
    for (const [i, id] of ids.entries()) {
      await expect(t.client.awaitResult(id, { timeoutMs: 20_000 })).resolves.toEqual({ i });
    }
    expect(gate.max).toBe(3);
    expect(gate.started).toBe(9);
    const runs = await sql.query(`select count(*)::int as n from durable.runs where task_id = any($1) and attempt = 1 and state = 'completed'`, [ids]);
    expect(runs.rows[0].n).toBe(9);
  });
});

/** Counts each task's executions and the most handlers running at once. */
const overlap = { current: 0, max: 0, runs: new Map<number, number>() };

@DurableTask({ name: 'overlap' })
class OverlapTask implements DurableTaskHandler<{ i: number }, number> {
  async run(params: { i: number }, ctx: TaskContext) {
    overlap.current += 1;
    overlap.max = Math.max(overlap.max, overlap.current);
    overlap.runs.set(params.i, (overlap.runs.get(params.i) ?? 0) + 1);
    try {
      return await ctx.step('s', () => params.i);
    } finally {
      overlap.current -= 1;
    }
  }
}

describe('claims on their way while handlers run', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    // 10 ms each way: each claim is on its way long enough for the next one to start beside it.
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }, { delay: 10 });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await db?.drop();
  });

  it('never run more than `concurrency` handlers, and each task once', async () => {
    t = await startApp(await proxy.listen(db.url), [OverlapTask], { worker: { concurrency: 8, pollIntervalMs: 50 } });
    const client = t.client;
    const ids = await Promise.all(Array.from({ length: 300 }, async (_, i) => (await client.spawn(OverlapTask, { i })).taskId));
    for (const [i, id] of ids.entries()) await expect(t.client.awaitResult(id, { timeoutMs: 60_000 })).resolves.toBe(i);
    // Two claims are on their way at once: a slot counted twice, or a claim's slots not
    // reserved while it is on its way, would let more than 8 run.
    expect(overlap.max).toBeLessThanOrEqual(8);
    expect([...overlap.runs.values()].filter((n) => n !== 1)).toEqual([]);
    expect(overlap.runs.size).toBe(300);
  });
});

const started = new Map<number, number>();
let onStart: (() => void) | undefined;

@DurableTask({ name: 'stamp' })
class StampTask implements DurableTaskHandler<{ i: number }, number> {
  async run(params: { i: number }) {
    started.set(params.i, Date.now());
    onStart?.();
    return params.i;
  }
}

describe('a wake-up that comes while a claim is on its way', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let t: DurableTestApp | undefined;
  let direct: DurableTestApp | undefined;
  let armed = false;
  let claimAnswered: (() => void) | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    // Every answer of the server is 300 ms late except a notification ('A'), which is not: a
    // task spawned while a claim's answer is held is announced before the claim answers.
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) }, {
      delay: (chunk, toServer) => {
        if (toServer || chunk[0] === 0x41) return 0;
        if (armed && chunk.includes('next_due_at')) {
          armed = false;
          claimAnswered?.();
        }
        return 300;
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await direct?.close();
    await proxy?.close();
    await db?.drop();
  });

  it('is not lost: the task it announces starts at once, not at the next poll', async () => {
    // A poll interval far longer than the test: only the wake-up can start the second task.
    t = await startApp(await proxy.listen(db.url), [StampTask], { worker: { concurrency: 4, pollIntervalMs: 60_000 } });
    direct = await startApp(db.url, [StampTask], { worker: false });
    // The first task's end sends a claim (it finds nothing); its answer comes back short. While
    // that answer is held, a second task is spawned on a direct connection and announced.
    const spawnedSecond = new Promise<number>((resolve) => {
      claimAnswered = () => {
        resolve(Date.now());
        void direct!.client.spawn(StampTask, { i: 2 });
      };
    });
    onStart = () => {
      armed = true;
    };
    const first = await direct.client.spawn(StampTask, { i: 1 });
    await expect(direct.client.awaitResult(first.taskId, { timeoutMs: 30_000 })).resolves.toBe(1);
    const spawnedAt = await spawnedSecond;
    await eventually(() => started.has(2), 20_000, 'the second task to start');
    // Woken: about two held answers (the claim's, then the next claim's). Lost: the next poll, 60 s.
    expect(started.get(2)! - spawnedAt).toBeLessThan(5_000);
  });
});

@DurableTask({ name: 'nap-an-hour' })
class NapTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    await ctx.sleepFor('nap', 3_600_000);
    return 'rested';
  }
}

describe('an idle worker whose poll interval is longer than its heartbeat period', () => {
  let db: TestDatabase;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
  });

  it('still claims at every other poll: a run that came due without a notification starts', async () => {
    // Beats every 5 s, polls every 6 s: a beat stands in for a poll's claim, but not for every one.
    t = await startApp(db.url, [NapTask], { worker: { pollIntervalMs: 6000 } });
    const { taskId } = await t.client.spawn(NapTask, {});
    await eventually(async () => (await t!.client.getTask(taskId))?.state === 'sleeping', 10_000, 'the task to sleep');
    const sql = sqlPool(db.url);
    try {
      // The hour passes on the database clock: nothing announces it, only a poll finds it.
      await advanceClock(sql, 3_600_000);
    } finally {
      await sql.end();
    }
    await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('rested');
  });
});

describe('closing', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  });
  afterEach(async () => {
    gate.open();
    await t?.close();
    t = undefined;
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it('resolves promptly and leaves no durable connection to the database', async () => {
    // A long poll interval: close must not wait for the idle worker's next poll.
    t = await startApp(db.url, [EchoTask], { worker: { pollIntervalMs: 10_000 } });
    const { taskId } = await t.client.spawn(EchoTask, 1);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ echo: 1, queue: 'default' });
    expect(await durableConnections(admin, db.name)).toBeGreaterThan(0);

    const startedAt = Date.now();
    await t.close();
    t = undefined;
    expect(Date.now() - startedAt).toBeLessThan(5000);
    await eventually(async () => (await durableConnections(admin, db.name)) === 0, 5000, 'no durable connections after close');
  });

  it('waits for an in-flight handler and records its result before closing the connection', async () => {
    gate = new Gate();
    t = await startApp(db.url, [BlockingTask]);
    const { taskId } = await t.client.spawn(BlockingTask, { i: 42 });
    await eventually(() => gate.current === 1, 15_000, 'the handler to start');

    let closed = false;
    const closing = t.close().then(() => {
      closed = true;
    });
    await sleep(500);
    expect(closed).toBe(false);
    gate.open();
    await closing;
    t = undefined;

    const { rows } = await sql.query(`select state, result from durable.tasks where id = $1`, [taskId]);
    expect(rows).toEqual([{ state: 'completed', result: { i: 42 } }]);
    await eventually(async () => (await durableConnections(admin, db.name)) === 0, 5000, 'no durable connections after close');
  });

  it('stops waiting after shutdownTimeoutMs and puts back the unfinished task, which started no step, without using an attempt', async () => {
    gate = new Gate();
    t = await startApp(db.url, [BlockingTask], { worker: { shutdownTimeoutMs: 300, leaseMs: 60_000 } });
    const { taskId } = await t.client.spawn(BlockingTask, { i: 7 });
    await eventually(() => gate.current === 1, 15_000, 'the handler to start');

    await t.close();
    t = undefined;
    expect(gate.current).toBe(1); // the handler is still blocked: close did not wait for it
    await eventually(async () => (await durableConnections(admin, db.name)) === 0, 5000, 'no durable connections after close');

    // The late handler finishes after the pool is gone: nothing is recorded, nothing escapes.
    gate.open();
    await eventually(() => gate.current === 0, 5000, 'the handler to return');
    await sleep(200);
    const { rows } = await sql.query(
      `select t.state, r.state as run_state, r.lease_expires_at is not null as leased from durable.tasks t
       join durable.runs r on r.id = t.run_id where t.id = $1`,
      [taskId],
    );
    // Issue 13, item 6: a handler not inside a step is stopped and its run put back (a handler
    // inside a step is left to lease expiry: test/integration/shutdown.spec.ts).
    expect(rows).toEqual([{ state: 'pending', run_state: 'pending', leased: false }]);
  });

  it('lets the process exit on its own after app.close() (no timer or socket left)', async () => {
    const startedAt = Date.now();
    let closedAt = 0;
    let out = '';
    const { code, stdout, stderr } = await runFixture('module-exit-app.ts', [db.url], 45_000, (chunk) => {
      out += chunk;
      if (!closedAt && out.includes('"closed":true')) closedAt = Date.now();
    });
    const closedToExitMs = closedAt ? Date.now() - closedAt : -1;
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(report).toEqual({ closed: true, result: { slept: true, value: 'v' }, state: 'completed' });
    // The fixture never calls process.exit: the process ended because nothing was left running.
    expect(closedToExitMs).toBeGreaterThanOrEqual(0);
    expect(closedToExitMs).toBeLessThan(5000);
    expect(Date.now() - startedAt).toBeLessThan(45_000);
  });
});

describe('schema and queue options', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  });
  afterAll(async () => {
    await t?.close();
    await sql?.end();
    await db?.drop();
  });

  it('creates the tables in the configured schema and runs tasks on the configured queue', async () => {
    t = await startApp(db.url, [EchoTask], { schema: 'durable_custom', queue: 'custom-queue' });
    const tables = await sql.query<{ table_schema: string; table_name: string }>(
      `select table_schema, table_name from information_schema.tables
       where table_schema in ('durable', 'durable_custom') order by table_schema, table_name`,
    );
    expect(tables.rows.map((row) => row.table_schema)).toEqual(tables.rows.map(() => 'durable_custom'));
    expect(tables.rows.map((row) => row.table_name)).toEqual(
      ['checkpoints', 'durable_migrations', 'events', 'flow_hands', 'flow_limits', 'flow_starts', 'queues', 'runs', 'schedules', 'task_counts', 'tasks', 'test_clock', 'waits', 'watches', 'worker_heartbeats'],
    );
    const schemas = await sql.query(`select nspname from pg_namespace where nspname in ('durable', 'durable_custom')`);
    expect(schemas.rows).toEqual([{ nspname: 'durable_custom' }]);
    const functions = await sql.query<{ n: number }>(
      `select count(distinct p.proname)::int as n from pg_proc p join pg_namespace n on n.oid = p.pronamespace
       where n.nspname = 'durable_custom' and p.proname in ('spawn_task', 'claim_tasks', 'write_batch')`,
    );
    expect(functions.rows[0].n).toBe(3);

    const { taskId } = await t.client.spawn(EchoTask, { custom: true });
    await expect(t.client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toEqual({ echo: { custom: true }, queue: 'custom-queue' });
    const rows = await sql.query(`select queue, name, state from durable_custom.tasks where id = $1`, [taskId]);
    expect(rows.rows).toEqual([{ queue: 'custom-queue', name: 'echo', state: 'completed' }]);
    expect(await t.client.listQueues()).toEqual(['custom-queue']);
  });

  it('keeps two schemas in one database apart', async () => {
    const other = await startApp(db.url, [EchoTask], { schema: 'durable_other', worker: { workerId: 'other-worker' } });
    try {
      const mine = await t!.client.spawn(EchoTask, 'mine');
      const theirs = await other.client.spawn(EchoTask, 'theirs');
      await expect(t!.client.awaitResult(mine.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ echo: 'mine', queue: 'custom-queue' });
      await expect(other.client.awaitResult(theirs.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ echo: 'theirs', queue: 'default' });
      // Each client sees only its own schema's tasks.
      await expect(t!.client.getTask(theirs.taskId)).resolves.toBeNull();
      await expect(other.client.getTask(mine.taskId)).resolves.toBeNull();
      const runs = await sql.query(`select worker_id from durable_other.runs where task_id = $1`, [theirs.taskId]);
      expect(runs.rows).toEqual([{ worker_id: 'other-worker' }]);
    } finally {
      await other.close();
    }
  });
});

describe('DurableClient.connect (without Nest)', () => {
  let db: TestDatabase;
  let client: DurableClient | undefined;
  let t: DurableTestApp | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await t?.close();
    await client?.close();
    await db?.drop();
  });

  it('spawns, reads tasks and awaits results; close() ends its connections', async () => {
    client = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
    const spawned = await client.spawn('echo', { standalone: 1 }, { headers: { via: 'connect' } });
    expect(spawned).toEqual({ taskId: expect.any(String), runId: expect.any(String), attempt: 1, created: true });
    const snapshot = await client.getTask(spawned.taskId);
    expect(snapshot).toMatchObject({
      taskId: spawned.taskId, name: 'echo', queue: 'default', state: 'pending', attempts: 1,
      params: { standalone: 1 }, headers: { via: 'connect' },
    });

    // A worker in a Nest app picks up what the standalone client spawned.
    t = await startApp(db.url, [EchoTask]);
    await expect(client.awaitResult(spawned.taskId, { timeoutMs: 15_000 })).resolves.toEqual({ echo: { standalone: 1 }, queue: 'default' });
    await t.close();
    t = undefined;
    expect(await client.listQueues()).toEqual(['default']);
    expect(await durableConnections(admin, db.name)).toBeGreaterThan(0);

    const closed = client;
    await closed.close();
    client = undefined;
    await eventually(async () => (await durableConnections(admin, db.name)) === 0, 5000, 'no durable connections after client.close()');
    // Closing twice is harmless; a closed client refuses calls instead of hanging.
    await expect(closed.close()).resolves.toBeUndefined();
    await expect(Promise.race([closed.spawn('echo', {}), sleep(5000).then(() => 'hung')])).rejects.toBeInstanceOf(Error);
  });
});
