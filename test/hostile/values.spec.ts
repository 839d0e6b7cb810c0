/**
 * Hostile values, property-based (fast-check): params, headers, step results and event payloads
 * are either stored and handed back exactly as JSON would (the same JSON text: key order,
 * '__proto__' own keys, numbers at the edges), or refused with a typed error and nothing written.
 * The oracle is test/fixtures/hostile-values.ts `expected()`.
 */
import fc from 'fast-check';
import type pg from 'pg';
import {
  DurableTask, InvalidArgumentError, SerializationError, TaskFailedError,
  type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import {
  SEED, anyKey, anyValue, countRows, outcomeOf, recordedError, expected, expectedNullable, hostileValue, jsonText, objectOf, protoPayload,
  prototypeState, reorderedKeys, settle, show, withBadUnits, type Outcome,
} from '../fixtures/hostile-values.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

/** maxPayloadBytes of the app under test: small, so that strings near it are cheap. */
const LIMIT = 32 * 1024;
const RUNS = 100;
const BATCH = { minLength: 1, maxLength: 8 };
const WAIT_MS = 20_000;
const PROTOTYPES_AT_LOAD = prototypeState();

// ---- what the handlers saw -----------------------------------------------------------------------

interface Seen {
  params?: unknown;
  headers?: Readonly<Record<string, unknown>>;
  headersFrozen?: boolean;
  value?: unknown;
}
/** By task id, then attempt. */
const seen = new Map<string, Map<number, Seen>>();
function see(ctx: TaskContext, values: Seen): void {
  if (!seen.has(ctx.taskId)) seen.set(ctx.taskId, new Map());
  seen.get(ctx.taskId)!.set(ctx.attempt, values);
}
function seenBy(taskId: string, attempt: number): Seen {
  const values = seen.get(taskId)?.get(attempt);
  if (!values) throw new Error(`attempt ${attempt} of task ${taskId} recorded nothing`);
  return values;
}

/** Values that cannot travel in params (cycles, BigInt, ...) reach handlers through this registry. */
const registry = new Map<string, unknown>();
const stepCalls = new Map<string, number>();
let registered = 0;
function register(value: unknown): string {
  const key = `value-${++registered}`;
  registry.set(key, value);
  return key;
}

@DurableTask({ name: 'hostile-echo', maxAttempts: 1 })
class EchoTask implements DurableTaskHandler<unknown, string> {
  async run(params: unknown, ctx: TaskContext) {
    see(ctx, { params, headers: ctx.headers, headersFrozen: Object.isFrozen(ctx.headers) });
    return 'ok';
  }
}

/** Returns the step's value; attempt 1 fails after the step, so attempt 2 replays it. */
@DurableTask({ name: 'hostile-step', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 0 } })
class StepTask implements DurableTaskHandler<{ key: string }, unknown> {
  async run({ key }: { key: string }, ctx: TaskContext) {
    const value = await ctx.step('value', () => {
      stepCalls.set(key, (stepCalls.get(key) ?? 0) + 1);
      return registry.get(key);
    });
    see(ctx, { value });
    if (ctx.attempt === 1) throw new Error('replay please');
    return value;
  }
}

@DurableTask({ name: 'hostile-waiter', maxAttempts: 1 })
class WaiterTask implements DurableTaskHandler<{ event: string }, unknown> {
  async run({ event }: { event: string }, ctx: TaskContext) {
    const value = await ctx.awaitEvent(event, { timeoutMs: 120_000 });
    see(ctx, { value });
    return value;
  }
}

@DurableTask({ name: 'hostile-emitter', maxAttempts: 1 })
class EmitterTask implements DurableTaskHandler<{ event: string; key: string }, string> {
  async run({ event, key }: { event: string; key: string }, ctx: TaskContext) {
    await ctx.emitEvent(event, registry.get(key));
    return 'emitted';
  }
}

// ---- checks --------------------------------------------------------------------------------------

/** `received` is exactly the stored outcome: the same JSON text (so the same keys, in order) and equal. */
function expectExactly(received: unknown, outcome: Outcome & { stored: true }, what: string): void {
  if (jsonText(received) !== outcome.text) {
    throw new Error(`${what}: expected JSON ${show(outcome.text)}, got ${show(jsonText(received))}`);
  }
  expect(received).toEqual(outcome.value);
}

type TypedError = typeof SerializationError | typeof InvalidArgumentError;

function expectRefusal(result: { ok: boolean; error?: Error }, errorClass: TypedError | TypedError[], what: string): void {
  const classes = Array.isArray(errorClass) ? errorClass : [errorClass];
  const names = classes.map((type) => type.name).join(' or ');
  if (result.ok) throw new Error(`${what}: expected ${names}, but it was accepted`);
  if (!classes.some((type) => result.error instanceof type)) {
    throw new Error(`${what}: expected ${names}, got ${result.error?.constructor.name}: ${result.error?.message}`);
  }
}

async function storedText(pool: pg.Pool, sql: string, params: unknown[]): Promise<string | null> {
  const { rows } = await pool.query(sql, params);
  expect(rows).toHaveLength(1);
  return rows[0].text as string | null;
}

const SEVERAL = <T>(arbitrary: fc.Arbitrary<T>) => fc.array(arbitrary, BATCH);

/**
 * A value other than `undefined` whose JSON is nothing at all (`{ toJSON: () => undefined }`):
 * has a test of its own below, so the properties leave it out at the top level.
 */
const jsonOfNothing = (value: unknown) => {
  const outcome = expected(value, Infinity);
  return value !== undefined && outcome.stored && outcome.text === undefined;
};
const hostile = hostileValue(LIMIT).filter((value) => !jsonOfNothing(value));

// ==================================================================================================

describe('hostile values (property-based, real Postgres)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [EchoTask, StepTask, WaiterTask, EmitterTask], {
      maxPayloadBytes: LIMIT,
      worker: { concurrency: 50, pollIntervalMs: 100 },
    });
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('the oracle agrees with JSON on plain values and refuses what JSON would lose', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(expected({ b: 1, a: [undefined, NaN, -0] }, LIMIT)).toEqual({ stored: true, text: '{"b":1,"a":[null,null,0]}', value: { b: 1, a: [null, null, 0] } });
    expect(expected(undefined, LIMIT)).toEqual({ stored: true, text: undefined, value: undefined });
    expect(expectedNullable(undefined, LIMIT)).toEqual({ stored: true, text: 'null', value: null });
    for (const bad of [1n, { f: () => 1 }, [Symbol('s')], cycle, 'a\u0000', { ['\uD800']: 1 }, 'x'.repeat(LIMIT)]) {
      expect(expected(bad, LIMIT).stored).toBe(false);
    }
    expect(expected('\uD83D\uDE00', LIMIT).stored).toBe(true);
  });

  it('1. spawn params: the handler and getTask see exactly the JSON of the params, or spawn refuses with SerializationError and writes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(SEVERAL(hostile), async (batch) => {
        const before = await countRows(pool);
        const outcomes = batch.map((params) => expectedNullable(params, LIMIT));
        const spawned = await Promise.all(batch.map((params) => settle(() => t.client.spawn('hostile-echo', params))));
        outcomes.forEach((outcome, i) => {
          if (!outcome.stored) expectRefusal(spawned[i], SerializationError, `params ${show(batch[i])} (${outcome.why})`);
          else if (!spawned[i].ok) throw new Error(`params ${show(batch[i])} refused: ${(spawned[i] as { error: Error }).error.message}`);
        });
        const accepted = outcomes.filter((outcome) => outcome.stored).length;
        // Refused spawns wrote nothing; accepted ones one task and one run each.
        expect(await countRows(pool)).toEqual({ ...before, tasks: before.tasks + accepted, runs: before.runs + accepted });

        await Promise.all(outcomes.map(async (outcome, i) => {
          const result = spawned[i];
          if (!outcome.stored || !result.ok) return;
          const { taskId } = result.value;
          expect(await outcomeOf(t.client, taskId)).toEqual({ ok: true, value: 'ok' });
          expectExactly(seenBy(taskId, 1).params, outcome, 'the params the handler saw');
          expectExactly((await t.client.getTask(taskId))!.params, outcome, 'getTask().params');
          expect(await storedText(pool, 'select params::text as text from durable.tasks where id = $1', [taskId])).toBe(outcome.text);
        }));
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);

  it('2. headers (hostile keys): ctx.headers and getTask().headers are exactly their JSON; a bad key is refused with a typed error and nothing written', async () => {
    const headerKey = fc.oneof({ arbitrary: anyKey(true), weight: 8 }, { arbitrary: fc.constantFrom('', 'a\u0000b', '\u0000'), weight: 1 });
    const headersArbitrary = fc.oneof(
      { arbitrary: fc.array(fc.tuple(headerKey, anyValue({ lossy: false, maxDepth: 2 })), { maxLength: 8 }).map((entries) => objectOf(entries)), weight: 6 },
      { arbitrary: fc.array(fc.tuple(headerKey, anyValue({ maxDepth: 2 })), { maxLength: 4 }).map((entries) => objectOf(entries, true)), weight: 2 },
      { arbitrary: reorderedKeys, weight: 1 },
      { arbitrary: protoPayload, weight: 1 },
      { arbitrary: fc.constant({}), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(SEVERAL(headersArbitrary), async (batch) => {
        const before = await countRows(pool);
        const spawned = await Promise.all(batch.map((headers) => settle(() => t.client.spawn('hostile-echo', null, { headers: headers as Record<string, unknown> }))));
        // A header key is a name (empty or with NUL: InvalidArgumentError) and a JSON key (with a
        // lone surrogate: not storable, so either error says what is wrong).
        // (A key JSON drops, its value undefined, may still be refused as a name.)
        const nameErrors = [InvalidArgumentError, SerializationError];
        const outcomes = batch.map((headers): Outcome & { errors?: TypedError[]; mayRefuse?: boolean } => {
          const keys = Object.keys(headers as object);
          const badName = keys.find((key) => key === '' || key.includes('\u0000'));
          if (badName !== undefined) return { stored: false, why: `bad name ${JSON.stringify(badName)}`, errors: [InvalidArgumentError] };
          const outcome = expected(headers, LIMIT);
          if (!keys.some((key) => !key.isWellFormed())) return outcome;
          return outcome.stored ? { ...outcome, mayRefuse: true } : { ...outcome, errors: nameErrors };
        });
        // Stored values that were refused as names count as refused.
        outcomes.forEach((outcome, i) => {
          const result = spawned[i];
          if (outcome.mayRefuse && !result.ok) {
            expectRefusal(result, nameErrors, `headers ${show(batch[i])} (a lone surrogate in a dropped key)`);
            outcomes[i] = { stored: false, why: 'refused as a name', errors: nameErrors };
          }
        });
        outcomes.forEach((outcome, i) => {
          const what = `headers ${show(batch[i])}`;
          if (!outcome.stored) expectRefusal(spawned[i], outcome.errors ?? SerializationError, `${what} (${outcome.why})`);
          else if (!spawned[i].ok) throw new Error(`${what} refused: ${(spawned[i] as { error: Error }).error.message}`);
        });
        const accepted = outcomes.filter((outcome) => outcome.stored).length;
        expect(await countRows(pool)).toEqual({ ...before, tasks: before.tasks + accepted, runs: before.runs + accepted });

        await Promise.all(outcomes.map(async (outcome, i) => {
          const result = spawned[i];
          if (!outcome.stored || !result.ok) return;
          const { taskId } = result.value;
          expect(await outcomeOf(t.client, taskId)).toEqual({ ok: true, value: 'ok' });
          const values = seenBy(taskId, 1);
          expectExactly(values.headers, outcome, 'ctx.headers');
          expect(values.headersFrozen).toBe(true);
          expectExactly((await t.client.getTask(taskId))!.headers, outcome, 'getTask().headers');
          expect(await storedText(pool, 'select headers::text as text from durable.tasks where id = $1', [taskId])).toBe(outcome.text);
        }));
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);

  it('3. step results: the first execution and the replay see exactly the JSON of the value; a value that is not storable fails the task with SerializationError and leaves no checkpoint', async () => {
    await fc.assert(
      fc.asyncProperty(SEVERAL(hostile), async (batch) => {
        const keys = batch.map(register);
        const outcomes = batch.map((value) => expected(value, LIMIT));
        const spawned = await Promise.all(keys.map((key) => t.client.spawn(StepTask, { key })));
        const results = await Promise.all(spawned.map(({ taskId }) => outcomeOf(t.client, taskId)));

        const ids = spawned.map((s) => s.taskId);
        const [checkpointRows, runRows] = await Promise.all([
          pool.query(`select task_id, value::text as text, value is null as sql_null from durable.checkpoints where task_id = any($1) and name = 'step:value'`, [ids]),
          pool.query('select task_id, attempt, state from durable.runs where task_id = any($1) order by attempt', [ids]),
        ]);
        const rowsOf = (result: pg.QueryResult, taskId: string) => result.rows.filter((row) => row.task_id === taskId).map(({ task_id: _id, ...row }) => row);
        for (const [i, outcome] of outcomes.entries()) {
          const { taskId } = spawned[i];
          const what = `step value ${show(batch[i])}`;
          const checkpoint = { rows: rowsOf(checkpointRows, taskId) };
          const runs = { rows: rowsOf(runRows, taskId) };
          expect(stepCalls.get(keys[i])).toBe(1);
          if (outcome.stored) {
            if (!results[i].ok) throw new Error(`${what}: the task failed: ${(results[i] as { error: Error }).error.message}`);
            expectExactly(seenBy(taskId, 1).value, outcome, `${what}, first execution`);
            expectExactly(seenBy(taskId, 2).value, outcome, `${what}, replay`);
            expectExactly((results[i] as { value: unknown }).value, outcome, `${what}, task result`);
            expect(checkpoint.rows).toEqual([{ text: outcome.text ?? null, sql_null: outcome.text === undefined }]);
            expect(runs.rows).toEqual([{ attempt: 1, state: 'failed' }, { attempt: 2, state: 'completed' }]);
          } else {
            const failure = results[i];
            if (failure.ok) throw new Error(`${what} (${outcome.why}): the task completed`);
            expect(failure.error).toBeInstanceOf(TaskFailedError);
            if ((failure.error as TaskFailedError).error.name !== 'SerializationError') {
              throw new Error(`${what} (${outcome.why}): failed with ${JSON.stringify((failure.error as TaskFailedError).error)}`);
            }
            expect(checkpoint.rows).toEqual([]);
            expect(runs.rows).toEqual([{ attempt: 1, state: 'failed' }]);
            expect(seen.get(taskId)).toBeUndefined();
          }
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);

  it('4. event payloads (client.emitEvent and ctx.emitEvent): the waiter receives exactly the JSON of the payload, or the emit is refused with SerializationError and no event is written', async () => {
    let events = 0;
    await fc.assert(
      fc.asyncProperty(SEVERAL(fc.tuple(hostile, fc.boolean())), async (batch) => {
        const cases = batch.map(([payload, fromTask]) => ({
          payload, fromTask, event: `event-${++events}`, outcome: expectedNullable(payload, LIMIT),
        }));
        const before = await countRows(pool);
        const runs = await Promise.all(cases.map(async ({ payload, fromTask, event, outcome }) => {
          const waiter = outcome.stored ? await t.client.spawn(WaiterTask, { event }) : undefined;
          const emit = fromTask
            ? settle(async () => {
              const emitter = await t.client.spawn(EmitterTask, { event, key: register(payload) });
              return { emitter: emitter.taskId, result: await outcomeOf(t.client, emitter.taskId) };
            })
            : settle(async () => ({ emitter: undefined, result: await settle(() => t.client.emitEvent(event, payload)) }));
          const emitted = await emit;
          const waited = waiter ? await outcomeOf(t.client, waiter.taskId) : undefined;
          return { waiter: waiter?.taskId, emitted, waited };
        }));

        // A payload whose JSON is undefined reads as null: stored as JSON null or SQL NULL alike.
        const eventRows = await pool.query(
          `select name, coalesce(payload::text, 'null') as text, emitted_at is not null as emitted from durable.events where name = any($1)`,
          [cases.map(({ event }) => event)],
        );
        let refused = 0;
        for (const [i, { payload, fromTask, event, outcome }] of cases.entries()) {
          const what = `payload ${show(payload)} ${fromTask ? 'from ctx.emitEvent' : 'from client.emitEvent'}`;
          const { waiter, emitted, waited } = runs[i];
          if (!emitted.ok) throw emitted.error;
          const { emitter, result } = emitted.value;
          const row = { rows: eventRows.rows.filter((r) => r.name === event).map(({ text, emitted }) => ({ text, emitted })) };
          if (outcome.stored) {
            if (!result.ok) throw new Error(`${what}: the emit failed: ${result.error.message}`);
            if (!waited?.ok) throw new Error(`${what}: the waiter failed: ${(waited as { error: Error }).error.message}`);
            expectExactly(waited.value, outcome, `${what}, waiter result`);
            expectExactly(seenBy(waiter!, 1).value, outcome, `${what}, awaitEvent`);
            expect(row.rows).toEqual([{ text: outcome.text, emitted: true }]);
          } else {
            refused += 1;
            if (fromTask) {
              if (result.ok) throw new Error(`${what} (${outcome.why}): the emitter completed`);
              expect((result.error as TaskFailedError).error?.name).toBe('SerializationError');
              const checkpoints = await pool.query('select name from durable.checkpoints where task_id = $1', [emitter]);
              expect(checkpoints.rows).toEqual([]);
            } else {
              expectRefusal(result, SerializationError, `${what} (${outcome.why})`);
            }
            expect(row.rows).toEqual([]);
          }
        }
        const after = await countRows(pool);
        expect(after.events - before.events).toBe(cases.length - refused);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);

  describe('5. prototype pollution', () => {
    it("keeps '__proto__' and 'constructor' own keys as plain data through params, headers, steps, events and results", async () => {
      const hostile = () => JSON.parse('{"__proto__":{"polluted":"yes","toString":"no"},"constructor":{"prototype":{"polluted":"yes"}},"after":1}');
      const text = JSON.stringify(hostile());
      expect(text).toBe('{"__proto__":{"polluted":"yes","toString":"no"},"constructor":{"prototype":{"polluted":"yes"}},"after":1}');
      const checkPlain = (value: unknown, what: string) => {
        const object = value as Record<string, unknown>;
        if (jsonText(object) !== text) throw new Error(`${what}: ${show(object)}`);
        expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
        // A data property (ctx.headers is frozen, so not writable there), not the prototype setter.
        expect(Object.getOwnPropertyDescriptor(object, '__proto__')).toMatchObject({ value: { polluted: 'yes', toString: 'no' }, enumerable: true });
        expect(Object.getPrototypeOf(object.__proto__)).toBe(Object.prototype);
        expect(object.polluted).toBeUndefined();
        expect(typeof object.toString).toBe('function');
        expect(Object.keys(object)).toEqual(['__proto__', 'constructor', 'after']);
      };

      const echo = await t.client.spawn('hostile-echo', hostile(), { headers: hostile() });
      const step = await t.client.spawn(StepTask, { key: register(hostile()) });
      const event = 'proto-event';
      const waiter = await t.client.spawn(WaiterTask, { event });
      await t.client.emitEvent(event, hostile());
      const fromTask = 'proto-event-from-task';
      const waiter2 = await t.client.spawn(WaiterTask, { event: fromTask });
      await t.client.spawn(EmitterTask, { event: fromTask, key: register(hostile()) });

      await t.client.awaitResult(echo.taskId, { timeoutMs: WAIT_MS });
      checkPlain(seenBy(echo.taskId, 1).params, 'params');
      checkPlain(seenBy(echo.taskId, 1).headers, 'ctx.headers');
      const snapshot = await t.client.getTask(echo.taskId);
      checkPlain(snapshot!.params, 'getTask().params');
      checkPlain(snapshot!.headers, 'getTask().headers');
      checkPlain(await t.client.awaitResult(step.taskId, { timeoutMs: WAIT_MS }), 'task result');
      checkPlain(seenBy(step.taskId, 1).value, 'step, first execution');
      checkPlain(seenBy(step.taskId, 2).value, 'step, replay');
      checkPlain(await t.client.awaitResult(waiter.taskId, { timeoutMs: WAIT_MS }), 'event payload');
      checkPlain(await t.client.awaitResult(waiter2.taskId, { timeoutMs: WAIT_MS }), 'ctx.emitEvent payload');
      checkPlain((await t.client.listTasks({ name: 'hostile-echo', limit: 1000 })).find((task) => task.taskId === echo.taskId)!.params, 'listTasks params');
    });

    it('leaves Object.prototype, Array.prototype and Function.prototype untouched after every property above', () => {
      expect(prototypeState()).toEqual(PROTOTYPES_AT_LOAD);
      const probe: Record<string, unknown> = {};
      expect(probe.polluted).toBeUndefined();
      expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
      expect(({} as { toString: unknown }).toString).toBe(Object.prototype.toString);
      expect(({}).constructor).toBe(Object);
    });
  });

  describe('values that slip past a replacer', () => {
    // JSON.stringify unwraps boxed primitives after calling the replacer, so a check of
    // `typeof item === 'string'` in a replacer never sees the text of a `new String(...)`.
    const boxed = fc.oneof(
      fc.oneof(withBadUnits, fc.string({ unit: 'grapheme', maxLength: 6 })).map((text) => new String(text)),
      fc.double().map((n) => new Number(n)),
      fc.boolean().map((b) => new Boolean(b)),
    );
    const holder = fc.tuple(boxed, anyKey(false), fc.boolean()).map(([value, key, inArray]) => (inArray ? [1, value] : objectOf([[key, value]])));

    it('boxed primitives (new String, new Number, new Boolean) are judged by their content: stored as JSON, or refused with SerializationError and nothing written', async () => {
      await fc.assert(
        fc.asyncProperty(SEVERAL(fc.oneof(boxed, holder)), async (batch) => {
          const before = await countRows(pool);
          const outcomes = batch.map((params) => expectedNullable(params, LIMIT));
          const spawned = await Promise.all(batch.map((params) => settle(() => t.client.spawn('hostile-echo', params))));
          outcomes.forEach((outcome, i) => {
            if (!outcome.stored) expectRefusal(spawned[i], SerializationError, `params ${show(batch[i])} (${outcome.why})`);
            else if (!spawned[i].ok) throw new Error(`params ${show(batch[i])} refused: ${(spawned[i] as { error: Error }).error.message}`);
          });
          const accepted = outcomes.filter((outcome) => outcome.stored).length;
          expect(await countRows(pool)).toEqual({ ...before, tasks: before.tasks + accepted, runs: before.runs + accepted });
          for (const [i, outcome] of outcomes.entries()) {
            const result = spawned[i];
            if (!outcome.stored || !result.ok) continue;
            expectExactly((await t.client.getTask(result.value.taskId))!.params, outcome, 'getTask().params');
          }
        }),
        { seed: SEED, numRuns: 40, endOnFailure: true },
      );
    }, 120_000);

    it('a boxed string with NUL as a step result fails the task with SerializationError and leaves no checkpoint', async () => {
      const { taskId } = await t.client.spawn(StepTask, { key: register({ text: new String('a\u0000b') }) });
      const failure = await outcomeOf(t.client, taskId);
      expect(failure.ok).toBe(false);
      expect(recordedError(failure)).toMatchObject({ name: 'SerializationError' });
      const checkpoints = await pool.query('select name from durable.checkpoints where task_id = $1', [taskId]);
      expect(checkpoints.rows).toEqual([]);
    }, 120_000);

    it('params whose JSON is nothing (toJSON returning undefined) are stored as null, like undefined params, or refused with SerializationError; never a database error', async () => {
      const nothing = { toJSON: () => undefined };
      for (const together of [false, true]) {
        const before = await countRows(pool);
        const calls = [t.client.spawn('hostile-echo', nothing), ...(together ? [t.client.spawn('hostile-echo', 'company')] : [])];
        const [spawned] = await Promise.all(calls.map((call) => settle(() => call)));
        if (spawned.ok) {
          expect(await outcomeOf(t.client, spawned.value.taskId)).toEqual({ ok: true, value: 'ok' });
          expect(seenBy(spawned.value.taskId, 1).params).toBeNull();
        } else {
          expect(spawned.error).toBeInstanceOf(SerializationError);
          expect(await countRows(pool)).toEqual({ ...before, tasks: before.tasks + calls.length - 1, runs: before.runs + calls.length - 1 });
        }
      }
    }, 120_000);

    it('a property JSON drops (its value is undefined) is dropped even when its key could not be stored', async () => {
      // JSON semantics: {"b":1}. Nothing unstorable would reach Postgres.
      const params = objectOf([['a\u0000', undefined], ['\uD800', undefined], ['b', 1]]);
      expect(expected(params, LIMIT)).toEqual({ stored: true, text: '{"b":1}', value: { b: 1 } });
      const spawned = await settle(() => t.client.spawn('hostile-echo', params));
      if (!spawned.ok) throw new Error(`refused: ${spawned.error.name}: ${spawned.error.message}`);
      expect((await t.client.getTask(spawned.value.taskId))!.params).toEqual({ b: 1 });
    });
  });

  it('headers whose JSON is not an object are refused, or handed back exactly', async () => {
    for (const headers of [{ toJSON: () => 'text' }, { toJSON: () => [1, 2] }, { toJSON: () => null }, new Date(0)]) {
      const outcome = expected(headers, LIMIT) as Outcome & { stored: true };
      const before = await countRows(pool);
      const spawned = await settle(() => t.client.spawn('hostile-echo', null, { headers: headers as unknown as Record<string, unknown> }));
      if (!spawned.ok) {
        expect([InvalidArgumentError, SerializationError].some((type) => spawned.error instanceof type)).toBe(true);
        expect(await countRows(pool)).toEqual(before);
        continue;
      }
      await t.client.awaitResult(spawned.value.taskId, { timeoutMs: WAIT_MS });
      expectExactly(seenBy(spawned.value.taskId, 1).headers, outcome, `ctx.headers of ${show(headers)}`);
      expectExactly((await t.client.getTask(spawned.value.taskId))!.headers, outcome, `getTask().headers of ${show(headers)}`);
    }
  });
});

// ==================================================================================================

@DurableTask({ name: 'hostile-barrier-result', queue: 'hostile-results', maxAttempts: 1 })
class BarrierResultTask implements DurableTaskHandler<{ bad: boolean }, unknown> {
  static arrived = 0;
  static release: () => void = () => undefined;
  static readonly gate = new Promise<void>((resolve) => {
    BarrierResultTask.release = resolve;
  });
  static readonly executions = new Map<string, number>();
  async run({ bad }: { bad: boolean }, ctx: TaskContext) {
    BarrierResultTask.executions.set(ctx.taskId, (BarrierResultTask.executions.get(ctx.taskId) ?? 0) + 1);
    BarrierResultTask.arrived += 1;
    await BarrierResultTask.gate;
    // Every handler returns in the same turn, so their completions share one batched write.
    return bad ? { text: new String('nul \u0000 here') } : 'fine';
  }
}

describe('a task result that slips past the checks (real Postgres)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;

  beforeAll(async () => {
    db = await createTestDatabase();
    t = await startApp(db.url, [BarrierResultTask], {
      queue: 'hostile-results',
      worker: { concurrency: 20, pollIntervalMs: 100, leaseMs: 2000 },
    });
  });
  afterAll(async () => {
    BarrierResultTask.release();
    await t?.close();
    await db?.drop();
  });

  it('fails that task with SerializationError at once, and costs the tasks completing in the same batch nothing', async () => {
    const bad = await t.client.spawn(BarrierResultTask, { bad: true });
    // Retries allowed, so that a lost completion shows as a second execution rather than a failure.
    const good = await Promise.all(Array.from({ length: 9 }, () =>
      t.client.spawn(BarrierResultTask, { bad: false }, { maxAttempts: 3, retry: { kind: 'fixed', delayMs: 0 } })));
    const deadline = Date.now() + WAIT_MS;
    while (BarrierResultTask.arrived < 10 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(BarrierResultTask.arrived).toBe(10);
    BarrierResultTask.release();

    const failure = await outcomeOf(t.client, bad.taskId);
    const goodOutcomes = [];
    for (const { taskId } of good) {
      const result = await outcomeOf(t.client, taskId);
      const snapshot = await t.client.getTask(taskId);
      goodOutcomes.push({ result: result.ok ? result.value : result.error.message, attempts: snapshot!.attempts, executions: BarrierResultTask.executions.get(taskId) });
    }
    expect({
      bad: failure.ok ? 'completed' : (failure.error as TaskFailedError).error?.name,
      badExecutions: BarrierResultTask.executions.get(bad.taskId),
      good: goodOutcomes,
    }).toEqual({
      bad: 'SerializationError',
      badExecutions: 1,
      good: good.map(() => ({ result: 'fine', attempts: 1, executions: 1 })),
    });
  }, 120_000);
});
