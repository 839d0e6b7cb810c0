/**
 * Oversized payloads: `maxPayloadBytes` (default 16 MiB, configurable) caps the UTF-8 bytes of the
 * JSON text of params, headers, step results, event payloads and task results. Just over the
 * limit is refused with a SerializationError naming maxPayloadBytes before anything is written;
 * exactly at the limit passes.
 */
import { Test } from '@nestjs/testing';
import fc from 'fast-check';
import type pg from 'pg';
import {
  DurableClient, DurableModule, DurableTask, InvalidArgumentError, SerializationError, TaskFailedError,
  type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { SEED, anyString, countRows, nearLimitString, outcomeOf, recordedError, settle, show } from '../fixtures/hostile-values.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const LIMIT = 1000;
const MiB = 1024 * 1024;
const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value), 'utf8');

/** A string whose JSON text is exactly `bytes` long, in a multi-byte character and one-byte padding. */
function stringOfJsonBytes(bytes: number, unit = '€'): string {
  const unitBytes = bytesOf(unit) - 2;
  const units = Math.floor((bytes - 2) / unitBytes);
  const text = unit.repeat(units) + 'a'.repeat(bytes - 2 - units * unitBytes);
  if (bytesOf(text) !== bytes) throw new Error(`${bytesOf(text)} bytes, not ${bytes}`);
  return text;
}

const registry = new Map<string, unknown>();
let registered = 0;
function register(value: unknown): string {
  const key = `limits-${++registered}`;
  registry.set(key, value);
  return key;
}
const stepCalls = new Map<string, number>();

/** What the handler does with the registered value: a step returns it, an emit sends it, or it is the result. */
@DurableTask({ name: 'limits-use', maxAttempts: 3, retry: { kind: 'fixed', delayMs: 0 } })
class UseTask implements DurableTaskHandler<{ key: string; as: 'step' | 'emit' | 'result'; event?: string }, unknown> {
  async run({ key, as, event }: { key: string; as: 'step' | 'emit' | 'result'; event?: string }, ctx: TaskContext) {
    const value = registry.get(key);
    if (as === 'step') {
      await ctx.step('small', () => 'fits');
      return (await ctx.step('big', () => {
        stepCalls.set(key, (stepCalls.get(key) ?? 0) + 1);
        return value;
      })) === value ? 'step stored' : 'step changed the value';
    }
    if (as === 'emit') {
      await ctx.emitEvent(event!, value);
      return 'emitted';
    }
    return value;
  }
}

@DurableTask({ name: 'limits-waiter', maxAttempts: 1 })
class WaiterTask implements DurableTaskHandler<{ event: string }, unknown> {
  async run({ event }: { event: string }, ctx: TaskContext) {
    const payload = await ctx.awaitEvent<string>(event, { timeoutMs: 120_000 });
    return typeof payload === 'string' ? payload.length : payload;
  }
}

function expectLimitError(error: unknown, what: RegExp, limit = LIMIT): void {
  expect(error).toBeInstanceOf(SerializationError);
  expect((error as Error).message).toMatch(/maxPayloadBytes/);
  expect((error as Error).message).toMatch(new RegExp(`\\b${limit}\\b`));
  expect((error as Error).message).toMatch(what);
}

// ==================================================================================================

describe(`maxPayloadBytes: ${LIMIT} (real Postgres)`, () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;
  let events = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [UseTask, WaiterTask], { maxPayloadBytes: LIMIT, worker: { concurrency: 20, pollIntervalMs: 200 } });
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  describe.each([['one-byte', 'a'], ['two-byte', 'é'], ['three-byte', '€'], ['four-byte', '😀'], ['escaped', '\n']])('%s characters', (_label, unit) => {
    const at = stringOfJsonBytes(LIMIT, unit);
    const over = stringOfJsonBytes(LIMIT + 1, unit);

    it('params: at the limit stored, one byte over refused with nothing written', async () => {
      const before = await countRows(pool);
      const error = await settle(() => t.client.spawn('limits-unhandled', over, { queue: 'unpolled' }));
      expectLimitError((error as { error: Error }).error, /params/);
      expect(await countRows(pool)).toEqual(before);
      const { taskId } = await t.client.spawn('limits-unhandled', at, { queue: 'unpolled' });
      expect((await t.client.getTask(taskId))!.params).toBe(at);
    });

    it('headers: the whole headers object counts', async () => {
      const before = await countRows(pool);
      const headersAt = { h: stringOfJsonBytes(LIMIT - bytesOf({ h: '' }) + 2, unit) };
      expect(bytesOf(headersAt)).toBe(LIMIT);
      // A property JSON drops (undefined) does not count.
      const headersOver = { h: `${headersAt.h}a`, dropped: undefined };
      expect(bytesOf(headersOver)).toBe(LIMIT + 1);
      const error = await settle(() => t.client.spawn('limits-unhandled', null, { queue: 'unpolled', headers: headersOver }));
      expectLimitError((error as { error: Error }).error, /headers/);
      expect(await countRows(pool)).toEqual(before);
      const { taskId } = await t.client.spawn('limits-unhandled', null, { queue: 'unpolled', headers: headersAt });
      expect((await t.client.getTask(taskId))!.headers).toEqual(headersAt);
    });

    it('client.emitEvent payload', async () => {
      const before = await countRows(pool);
      const event = `limits-${++events}`;
      const error = await settle(() => t.client.emitEvent(event, over));
      expectLimitError((error as { error: Error }).error, /payload of event/);
      expect(await countRows(pool)).toEqual(before);
      await t.client.emitEvent(event, at);
      const { rows } = await pool.query('select payload from durable.events where name = $1', [event]);
      expect(rows).toEqual([{ payload: at }]);
    });

    it('step result, ctx.emitEvent payload and task result: over the limit fails the task with SerializationError and writes nothing for it', async () => {
      const cases = (['step', 'emit', 'result'] as const).flatMap((as) => [
        { as, value: over, fits: false, event: `limits-${++events}` },
        { as, value: at, fits: true, event: `limits-${++events}` },
      ]);
      const spawned = await Promise.all(cases.map(({ as, value, event }) => t.client.spawn(UseTask, { key: register(value), as, event })));
      const waiters = await Promise.all(cases.map(({ as, fits, event }) => (as === 'emit' && fits ? t.client.spawn(WaiterTask, { event }) : undefined)));
      for (const [i, { as, value, fits, event }] of cases.entries()) {
        const { taskId } = spawned[i];
        const outcome = await outcomeOf(t.client, taskId);
        const checkpoints = (await pool.query('select name from durable.checkpoints where task_id = $1 order by name', [taskId])).rows.map((row) => row.name);
        const emitted = (await pool.query('select payload from durable.events where name = $1', [event])).rows;
        const runs = (await pool.query('select attempt, state from durable.runs where task_id = $1 order by attempt', [taskId])).rows;
        if (fits) {
          expect({ as, outcome }).toEqual({ as, outcome: { ok: true, value: { step: 'step stored', emit: 'emitted', result: value }[as] } });
          expect(checkpoints).toEqual({ step: ['step:big', 'step:small'], emit: [`emit:${event}`], result: [] }[as]);
          if (as === 'emit') {
            expect(emitted).toEqual([{ payload: value }]);
            expect(await outcomeOf(t.client, waiters[i]!.taskId)).toEqual({ ok: true, value: value.length });
          }
        } else {
          expect({ as, ok: outcome.ok }).toEqual({ as, ok: false });
          expect((outcome as { error: Error }).error).toBeInstanceOf(TaskFailedError);
          expect(recordedError(outcome)).toMatchObject({ name: 'SerializationError', message: expect.stringMatching(/maxPayloadBytes/) });
          // At once: one attempt, though the task allows three.
          expect(runs).toEqual([{ attempt: 1, state: 'failed' }]);
          expect(checkpoints).toEqual(as === 'step' ? ['step:small'] : []);
          expect(emitted).toEqual([]);
          expect((await pool.query('select result from durable.tasks where id = $1', [taskId])).rows).toEqual([{ result: null }]);
        }
      }
    }, 120_000);
  });

  it('property: a value is accepted exactly when the UTF-8 bytes of its JSON text are at most maxPayloadBytes (params, headers, payloads)', async () => {
    const value = fc.oneof(
      nearLimitString(LIMIT),
      fc.tuple(anyString(false), nearLimitString(LIMIT - 40)).map(([prefix, filler]) => ({ prefix, filler })),
      fc.tuple(fc.array(anyString(false), { maxLength: 30 }), nearLimitString(LIMIT - 300)).map(([list, filler]) => [filler, ...list]),
    );
    await fc.assert(
      fc.asyncProperty(value, fc.constantFrom('params', 'headers', 'payload'), async (v, where) => {
        const text = JSON.stringify(where === 'headers' ? { v } : v);
        const fits = Buffer.byteLength(text, 'utf8') <= LIMIT;
        const before = await countRows(pool);
        const event = `limits-${++events}`;
        const result = await settle<unknown>(() =>
          where === 'params' ? t.client.spawn('limits-unhandled', v, { queue: 'unpolled' })
            : where === 'headers' ? t.client.spawn('limits-unhandled', null, { queue: 'unpolled', headers: { v } })
              : t.client.emitEvent(event, v));
        if (fits !== result.ok) {
          throw new Error(`${where} of ${Buffer.byteLength(text)} bytes (${text.length} chars, ${show(v)}): ${result.ok ? 'accepted' : result.error.message}`);
        }
        if (!result.ok) {
          expectLimitError(result.error, /./);
          expect(result.error.message).toMatch(new RegExp(`\\b${Buffer.byteLength(text)} bytes`));
          expect(await countRows(pool)).toEqual(before);
        }
      }),
      { seed: SEED, numRuns: 150, endOnFailure: true },
    );
  }, 120_000);
});

// ==================================================================================================

describe('the default maxPayloadBytes is 16 MiB (real Postgres)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [], { worker: false });
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('refuses 16 MiB + 1 byte of JSON, writing nothing, and stores exactly 16 MiB', async () => {
    const over = 'a'.repeat(16 * MiB - 1); // plus two quotes: 16 MiB + 1
    const before = await countRows(pool);
    for (const call of <(() => Promise<unknown>)[]>[
      () => t.client.spawn('limits-default', over, { queue: 'unpolled' }),
      () => t.client.spawn('limits-default', null, { queue: 'unpolled', headers: { h: over.slice(6) } }),
      () => t.client.emitEvent('limits-default', over),
    ]) {
      const result = await settle(call);
      expectLimitError((result as { error: Error }).error, /16777217 bytes/, 16 * MiB);
    }
    expect(await countRows(pool)).toEqual(before);

    const at = 'a'.repeat(16 * MiB - 2);
    const { taskId } = await t.client.spawn('limits-default', at, { queue: 'unpolled' });
    const { rows } = await pool.query('select octet_length(params::text) as bytes from durable.tasks where id = $1', [taskId]);
    expect(rows).toEqual([{ bytes: 16 * MiB }]);
  });
});

describe('maxPayloadBytes must be a positive integer', () => {
  const CLOSED = 'postgres://durable:not-used@127.0.0.1:1/durable';
  const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };
  const BAD = [0, -1, 1.5, NaN, Infinity, 2 ** 31, '1000' as unknown as number];

  it.each(BAD.map((value) => [String(value), value]))('DurableModule.forRoot refuses %s with InvalidArgumentError before connecting', async (_label, maxPayloadBytes) => {
    const result = await settle(async () => {
      const moduleRef = await Test.createTestingModule({ imports: [DurableModule.forRoot({ databaseUrl: CLOSED, maxPayloadBytes, worker: false })] }).setLogger(silent).compile();
      await moduleRef.close();
    });
    expect((result as { error: Error }).error).toBeInstanceOf(InvalidArgumentError);
    expect((result as { error: Error }).error.message).toMatch(/maxPayloadBytes/);
  });

  it('DurableClient.connect refuses each of them with InvalidArgumentError before connecting', async () => {
    const outcomes: Record<string, string> = {};
    for (const maxPayloadBytes of BAD) {
      const result = await settle(() => DurableClient.connect({ databaseUrl: CLOSED, maxPayloadBytes, logger: silent }));
      if (result.ok) await result.value.close();
      outcomes[String(maxPayloadBytes)] = result.ok ? 'accepted'
        : result.error instanceof InvalidArgumentError && /maxPayloadBytes/.test(result.error.message) ? 'InvalidArgumentError' : result.error.constructor.name;
    }
    expect(outcomes).toEqual(Object.fromEntries(BAD.map((value) => [String(value), 'InvalidArgumentError'])));
  });

  describe('against a live database', () => {
    let db: TestDatabase;
    let pool: pg.Pool;
    beforeAll(async () => {
      db = await createTestDatabase();
      pool = sqlPool(db.url);
    });
    afterAll(async () => {
      await pool?.end();
      await db?.drop();
    });

    it('DurableClient.connect with a bad setting rejects with InvalidArgumentError and leaves no connection open', async () => {
      const settings = [{ maxPayloadBytes: 0 }, { queue: '' }, { defaults: { maxAttempts: 0 } }];
      const outcomes = [];
      for (const setting of settings) {
        const result = await settle(() => DurableClient.connect({ databaseUrl: db.url, logger: silent, ...setting }));
        if (result.ok) await result.value.close();
        outcomes.push(result.ok ? 'accepted' : result.error.constructor.name);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { rows } = await pool.query(
        `select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'nestjs-durable'`,
      );
      expect({ outcomes, openConnections: rows[0].n }).toEqual({ outcomes: settings.map(() => 'InvalidArgumentError'), openConnections: 0 });
    });
  });
});
