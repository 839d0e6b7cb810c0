/**
 * The testing kit (`nestjs-durable/testing`), used the way a user's own test would: a fresh
 * database, a task that sleeps for a day tested in milliseconds, `drain`, and its refusals.
 * Without DURABLE_TEST_DATABASE_URL the kit starts an embedded PostgreSQL of its own.
 */
import { Test, type TestingModule } from '@nestjs/testing';
import pg from 'pg';
import {
  DurableClient, DurableModule, DurableTask, EventTimeoutError, InvalidArgumentError, TimeoutError,
  type DurableTaskHandler, type TaskContext,
} from 'nestjs-durable';
import { DurableTestDatabase } from 'nestjs-durable/testing';

const DAY_MS = 24 * 60 * 60 * 1000;
const sent: string[] = [];
let releaseStuck: (() => void) | undefined;

@DurableTask({ name: 'reminder' })
class ReminderTask implements DurableTaskHandler<{ to: string }, string> {
  async run(params: { to: string }, ctx: TaskContext) {
    await ctx.sleepFor('a day', DAY_MS);
    return ctx.step('send', () => {
      sent.push(params.to);
      return `reminded ${params.to}`;
    });
  }
}

@DurableTask({ name: 'approval', maxAttempts: 1 })
class ApprovalTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    try {
      await ctx.awaitEvent('approved', { timeoutMs: 60 * 60 * 1000 });
      return 'approved';
    } catch (error) {
      if (error instanceof EventTimeoutError) return 'expired';
      throw error;
    }
  }
}

@DurableTask({ name: 'stuck' })
class StuckTask implements DurableTaskHandler<unknown, string> {
  async run() {
    await new Promise<void>((resolve) => { releaseStuck = resolve; });
    return 'released';
  }
}

async function appOn(db: DurableTestDatabase, worker: false | object = {}): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [DurableModule.forRoot({ databaseUrl: db.url, worker: worker === false ? false : { pollIntervalMs: 60_000, ...worker } })],
    providers: [ReminderTask, ApprovalTask, StuckTask],
  }).compile();
  moduleRef.useLogger(false);
  return moduleRef.init();
}

describe('nestjs-durable/testing', () => {
  let db: DurableTestDatabase;
  let app: TestingModule;
  let client: DurableClient;

  beforeAll(async () => {
    db = await DurableTestDatabase.start();
    app = await appOn(db);
    client = app.get(DurableClient);
  });
  afterAll(async () => {
    releaseStuck?.();
    await app?.close();
    await db?.close();
  });

  it('tests a task that sleeps for a day without waiting a day', async () => {
    const { taskId } = await client.spawn(ReminderTask, { to: 'ada' });
    await db.drain(app);
    expect((await client.getTask(taskId))?.state).toBe('sleeping');
    expect(sent).toEqual([]);

    await db.advanceClock(DAY_MS);
    await db.drain(app); // the worker polls only every minute here: advanceClock wakes it
    const task = await client.getTask(taskId);
    expect(task).toMatchObject({ state: 'completed', result: 'reminded ada' });
    expect(sent).toEqual(['ada']);
  });

  it('jumps over an event timeout', async () => {
    const { taskId } = await client.spawn(ApprovalTask, {});
    await db.drain(app);
    expect((await client.getTask(taskId))?.state).toBe('sleeping');
    await db.advanceClock(60 * 60 * 1000);
    await db.drain(app);
    expect(await client.getTask(taskId)).toMatchObject({ state: 'completed', result: 'expired' });
  });

  it('leaves a task that waits for an event waiting, and runs it once the event comes', async () => {
    const { taskId } = await client.spawn(ApprovalTask, {});
    await db.drain(app);
    await client.emitEvent('approved');
    await db.drain(app);
    expect(await client.getTask(taskId)).toMatchObject({ state: 'completed', result: 'approved' });
  });

  it('says what is left when the worker does not get done in time', async () => {
    const { taskId } = await client.spawn(StuckTask, {});
    await expect(db.drain(app, { timeoutMs: 300 })).rejects.toThrow(TimeoutError);
    await expect(db.drain(app, { timeoutMs: 300 })).rejects.toThrow(/1 run\(s\) still running or due and 1 handler\(s\) in flight/);
    releaseStuck!();
    await db.drain(app);
    expect((await client.getTask(taskId))?.state).toBe('completed');
  });

  it('refuses to drain an app without a worker, and a bad clock step', async () => {
    const producer = await appOn(db, false);
    try {
      await expect(db.drain(producer)).rejects.toThrow(InvalidArgumentError);
      await expect(db.drain(producer)).rejects.toThrow(/worker running \(it is none\)/);
    } finally {
      await producer.close();
    }
    await expect(db.advanceClock(-1)).rejects.toThrow(InvalidArgumentError);
    await expect(db.advanceClock(Number.NaN)).rejects.toThrow(InvalidArgumentError);
  });

  it('drops its database on close', async () => {
    const other = await DurableTestDatabase.start();
    const name = new URL(other.url).pathname.slice(1);
    const probe = new pg.Client({ connectionString: other.url });
    await probe.connect();
    expect((await probe.query("select current_setting('durable.test_clock', true) as clock")).rows[0].clock).toBe('on');
    await probe.end();
    const serverUrl = process.env.DURABLE_TEST_DATABASE_URL;
    await other.close();
    if (serverUrl) {
      // On a shared server the database is gone; an embedded server is gone altogether.
      const admin = new pg.Client({ connectionString: serverUrl });
      await admin.connect();
      try {
        expect((await admin.query('select 1 from pg_database where datname = $1', [name])).rowCount).toBe(0);
      } finally {
        await admin.end();
      }
    } else {
      const gone = new pg.Client({ connectionString: other.url, connectionTimeoutMillis: 2000 });
      await expect(gone.connect()).rejects.toThrow();
    }
  });
});
