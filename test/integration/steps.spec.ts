/**
 * Steps and checkpoints, JSON semantics of step results, params and headers, and how failures
 * are retried or made final. Every guarantee is checked against the rows in Postgres.
 */
import type pg from 'pg';
import {
  DurableTask, NonRetryableError, TaskFailedError,
  type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { advanceClock, eventually, sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

// ---------------------------------------------------------------------------------------------
// Bookkeeping shared by the handlers: how often each step function ran, and what each attempt saw.
// Keys start with the task id, so tests never see each other's counts.

const calls = new Map<string, number>();
function bump(taskId: string, what: string): void {
  const key = `${taskId}:${what}`;
  calls.set(key, (calls.get(key) ?? 0) + 1);
}
function callsOf(taskId: string, what: string): number {
  return calls.get(`${taskId}:${what}`) ?? 0;
}

/** What a handler observed, by task id, then attempt. */
const seen = new Map<string, Map<number, Record<string, unknown>>>();
function see(ctx: TaskContext, values: Record<string, unknown>): void {
  if (!seen.has(ctx.taskId)) seen.set(ctx.taskId, new Map());
  seen.get(ctx.taskId)!.set(ctx.attempt, values);
}
function seenBy(taskId: string, attempt: number): Record<string, unknown> {
  const values = seen.get(taskId)?.get(attempt);
  if (!values) throw new Error(`attempt ${attempt} of task ${taskId} recorded nothing`);
  return values;
}

const FAST_RETRY = { kind: 'fixed', delayMs: 0 } as const;

// ---------------------------------------------------------------------------------------------
// Handlers

@DurableTask({ name: 'steps-replay' })
class ReplayTask implements DurableTaskHandler<Record<string, never>, { a: number; b: number; c: number }> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    const a = await ctx.step('one', () => {
      bump(ctx.taskId, 'one');
      return 1;
    });
    const b = await ctx.step('two', async () => {
      bump(ctx.taskId, 'two');
      return 2;
    });
    const c = await ctx.step('three', () => {
      bump(ctx.taskId, 'three');
      if (ctx.attempt === 1) throw new Error('three fails on attempt 1');
      return 3;
    });
    return { a, b, c };
  }
}

@DurableTask({ name: 'steps-duplicate-names' })
class DuplicateNamesTask implements DurableTaskHandler<Record<string, never>, string[]> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    // If a replay re-ran a function, the attempt number would show in its value.
    const first = await ctx.step('x', () => {
      bump(ctx.taskId, 'x');
      return `first from attempt ${ctx.attempt}`;
    });
    const second = await ctx.step('x', () => {
      bump(ctx.taskId, 'x');
      return `second from attempt ${ctx.attempt}`;
    });
    see(ctx, { first, second });
    await ctx.step('later', () => {
      bump(ctx.taskId, 'later');
      if (ctx.attempt === 1) throw new Error('later fails on attempt 1');
      return 'ok';
    });
    return [first, second];
  }
}

@DurableTask({ name: 'steps-parallel-names' })
class ParallelNamesTask implements DurableTaskHandler<Record<string, never>, string[]> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    // Started in call order 1, 2, 3 but finishing in order 3, 2, 1: numbering follows the calls.
    const values = await Promise.all([1, 2, 3].map((n) =>
      ctx.step('p', async () => {
        bump(ctx.taskId, 'p');
        await new Promise((resolve) => setTimeout(resolve, (4 - n) * 40));
        return `call ${n} from attempt ${ctx.attempt}`;
      }),
    ));
    see(ctx, { values });
    await ctx.step('fail-once', () => {
      if (ctx.attempt === 1) throw new Error('replay please');
    });
    return values;
  }
}

@DurableTask({ name: 'steps-hash-names' })
class HashNamesTask implements DurableTaskHandler<Record<string, never>, string[]> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    // A user's step may be called "x#2": names are data, so it must not be mistaken for the
    // second call of "x" (nor the other way round).
    const values = [
      await ctx.step('x', () => { bump(ctx.taskId, 'x'); return 'x, first call'; }),
      await ctx.step('x#2', () => { bump(ctx.taskId, 'x#2'); return 'the step named x#2'; }),
      await ctx.step('x', () => { bump(ctx.taskId, 'x'); return 'x, second call'; }),
    ];
    see(ctx, { values });
    await ctx.step('fail-once', () => {
      if (ctx.attempt === 1) throw new Error('replay please');
    });
    return values;
  }
}

@DurableTask({ name: 'steps-json' })
class JsonTask implements DurableTaskHandler<Record<string, never>, unknown> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    const date = await ctx.step('date', () => {
      bump(ctx.taskId, 'fn');
      return new Date('2024-01-02T03:04:05.678Z');
    });
    const object = await ctx.step('object', () => {
      bump(ctx.taskId, 'fn');
      return { keep: 1, dropped: undefined, nested: [1, undefined, [undefined, 'two']], deep: { also: undefined } };
    });
    const nothing = await ctx.step('undefined', () => {
      bump(ctx.taskId, 'fn');
      return undefined;
    });
    const empty = await ctx.step('null', () => {
      bump(ctx.taskId, 'fn');
      return null;
    });
    const custom = await ctx.step('toJSON', () => {
      bump(ctx.taskId, 'fn');
      return { toJSON: () => ({ custom: true }) };
    });
    see(ctx, { date, object, nothing, empty, custom });
    await ctx.step('fail-once', () => {
      if (ctx.attempt === 1) throw new Error('replay please');
    });
    return { date, object, empty };
  }
}

/** About 1 MiB of text with multi-byte characters and a surrogate pair. */
const BIG = Array.from({ length: 1 << 16 }, (_, i) => `${i % 10}é😀x`).join('').padEnd(1 << 20, 'z');

@DurableTask({ name: 'steps-big' })
class BigTask implements DurableTaskHandler<Record<string, never>, number> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    const big = await ctx.step('big', () => {
      bump(ctx.taskId, 'big');
      return BIG;
    });
    see(ctx, { big });
    await ctx.step('fail-once', () => {
      if (ctx.attempt === 1) throw new Error('replay please');
    });
    return big.length;
  }
}

@DurableTask({ name: 'steps-sixty' })
class SixtyStepsTask implements DurableTaskHandler<Record<string, never>, number> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    let sum = 0;
    for (let i = 1; i <= 60; i++) {
      sum += await ctx.step(`s${i}`, () => {
        bump(ctx.taskId, 'fn');
        return i;
      });
    }
    // One failure after the last step: attempt 2 replays all 60 from their checkpoints.
    await ctx.step('fail-once', () => {
      if (ctx.attempt === 1) throw new Error('replay please');
    });
    return sum;
  }
}

type BadKind = 'bigint' | 'function in object' | 'bare function' | 'symbol in object' | 'cycle' | 'NUL in string' | 'NUL in key' | 'lone surrogate' | 'lone low surrogate';

function badValue(kind: BadKind): unknown {
  switch (kind) {
    case 'bigint':
      return { amount: 10n };
    case 'function in object':
      return { ok: 1, callback: () => 1 };
    case 'bare function':
      return () => 1;
    case 'symbol in object':
      return { tag: Symbol('tag') };
    case 'cycle': {
      const node: Record<string, unknown> = { name: 'node' };
      node.self = node;
      return node;
    }
    case 'NUL in string':
      return { text: 'a\u0000b' };
    case 'NUL in key':
      return { ['a\u0000b']: 1 };
    case 'lone surrogate':
      return ['ok', 'a\uD800b'];
    case 'lone low surrogate':
      return 'x\uDC00';
  }
}

@DurableTask({ name: 'steps-bad-step' })
class BadStepTask implements DurableTaskHandler<{ kind: BadKind }, string> {
  async run(params: { kind: BadKind }, ctx: TaskContext) {
    await ctx.step('fine', () => 'fine');
    await ctx.step('bad', () => {
      bump(ctx.taskId, 'bad');
      return badValue(params.kind);
    });
    bump(ctx.taskId, 'after bad');
    return 'unreachable';
  }
}

@DurableTask({ name: 'steps-bad-result' })
class BadResultTask implements DurableTaskHandler<{ kind: BadKind }, unknown> {
  async run(params: { kind: BadKind }, ctx: TaskContext) {
    bump(ctx.taskId, 'run');
    await ctx.step('fine', () => 'fine');
    return badValue(params.kind);
  }
}

@DurableTask({ name: 'steps-params' })
class ParamsTask implements DurableTaskHandler<unknown, string> {
  async run(params: unknown, ctx: TaskContext) {
    see(ctx, { params, headers: ctx.headers, headersFrozen: Object.isFrozen(ctx.headers) });
    return 'ok';
  }
}

class FlakyError extends Error {
  override name = 'FlakyError';
}

class PaymentDeclinedError extends NonRetryableError {}

type FailHow = 'non-retryable' | 'non-retryable subclass' | 'plain' | 'string' | 'unstorable message';

@DurableTask({ name: 'steps-fails' })
class FailingTask implements DurableTaskHandler<{ how: FailHow }, never> {
  async run(params: { how: FailHow }, ctx: TaskContext): Promise<never> {
    bump(ctx.taskId, 'run');
    await ctx.step('before', () => {
      bump(ctx.taskId, 'before');
      return 'done';
    });
    switch (params.how) {
      case 'non-retryable':
        throw new NonRetryableError(`give up on attempt ${ctx.attempt}`);
      case 'non-retryable subclass':
        throw new PaymentDeclinedError('card declined');
      case 'string':
        throw 'a thrown string';
      case 'unstorable message':
        throw new FlakyError('NUL \u0000 and lone \uD800 surrogate');
      default:
        throw new FlakyError(`fail on attempt ${ctx.attempt}`);
    }
  }
}

const HANDLERS = [
  ReplayTask, DuplicateNamesTask, ParallelNamesTask, HashNamesTask, JsonTask, BigTask, SixtyStepsTask, BadStepTask, BadResultTask,
  ParamsTask, FailingTask,
];

// ---------------------------------------------------------------------------------------------
// Row helpers

interface CheckpointRow {
  name: string;
  value: unknown;
  sql_null: boolean;
  json_type: string | null;
  attempt: number;
}

async function checkpointsOf(pool: pg.Pool, taskId: string): Promise<CheckpointRow[]> {
  const { rows } = await pool.query<CheckpointRow>(
    `select name, value, value is null as sql_null, json_typeof(value) as json_type, attempt
     from durable.checkpoints where task_id = $1 order by created_at, name`,
    [taskId],
  );
  return rows;
}

interface RunRow {
  attempt: number;
  state: string;
  error: { name: string; message: string } | null;
}

async function runsOf(pool: pg.Pool, taskId: string): Promise<RunRow[]> {
  const { rows } = await pool.query<RunRow>(
    'select attempt, state, error from durable.runs where task_id = $1 order by attempt',
    [taskId],
  );
  return rows;
}

async function taskRow(pool: pg.Pool, taskId: string) {
  const { rows } = await pool.query('select state, attempts, result, error from durable.tasks where id = $1', [taskId]);
  expect(rows).toHaveLength(1);
  return rows[0] as { state: string; attempts: number; result: unknown; error: { name: string; message: string } | null };
}

/** Awaits the task's failure and returns the TaskFailedError. */
async function failureOf(t: DurableTestApp, taskId: string): Promise<TaskFailedError> {
  const error = await t.client.awaitResult(taskId, { timeoutMs: 20_000 }).then(
    (result) => {
      throw new Error(`expected task ${taskId} to fail, it completed with ${JSON.stringify(result)}`);
    },
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(TaskFailedError);
  return error as TaskFailedError;
}

// ---------------------------------------------------------------------------------------------

describe('steps (real Postgres)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, HANDLERS);
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  describe('checkpoints and replay', () => {
    it('does not re-run a completed step after a later step fails', async () => {
      const { taskId } = await t.client.spawn(ReplayTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toEqual({ a: 1, b: 2, c: 3 });

      expect(callsOf(taskId, 'one')).toBe(1);
      expect(callsOf(taskId, 'two')).toBe(1);
      expect(callsOf(taskId, 'three')).toBe(2);

      const checkpoints = await checkpointsOf(pool, taskId);
      expect(checkpoints.map(({ name, value, attempt }) => ({ name, value, attempt })).sort((x, y) => x.name.localeCompare(y.name))).toEqual([
        { name: 'step:one', value: 1, attempt: 1 },
        { name: 'step:three', value: 3, attempt: 2 },
        { name: 'step:two', value: 2, attempt: 1 },
      ]);

      const runs = await runsOf(pool, taskId);
      expect(runs.map((run) => [run.attempt, run.state])).toEqual([[1, 'failed'], [2, 'completed']]);
      expect(runs[0].error).toMatchObject({ name: 'Error', message: 'three fails on attempt 1' });
      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'completed', attempts: 2, result: { a: 1, b: 2, c: 3 }, error: null });
    });

    it('stores each occurrence of a repeated step name and replays them in order with their own values', async () => {
      const { taskId } = await t.client.spawn(DuplicateNamesTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toEqual([
        'first from attempt 1', 'second from attempt 1',
      ]);

      expect(callsOf(taskId, 'x')).toBe(2);
      expect(callsOf(taskId, 'later')).toBe(2);
      const expected = { first: 'first from attempt 1', second: 'second from attempt 1' };
      expect(seenBy(taskId, 1)).toEqual(expected);
      expect(seenBy(taskId, 2)).toEqual(expected);

      const checkpoints = await checkpointsOf(pool, taskId);
      expect(checkpoints.map(({ name, value, attempt }) => ({ name, value, attempt })).sort((x, y) => x.name.localeCompare(y.name))).toEqual([
        { name: 'step:later', value: 'ok', attempt: 2 },
        { name: 'step:x', value: 'first from attempt 1', attempt: 1 },
        { name: 'step:x#2', value: 'second from attempt 1', attempt: 1 },
      ]);
    });

    it('numbers concurrent steps of one name by call order, not completion order', async () => {
      const { taskId } = await t.client.spawn(ParallelNamesTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      const expected = ['call 1 from attempt 1', 'call 2 from attempt 1', 'call 3 from attempt 1'];
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toEqual(expected);
      expect(callsOf(taskId, 'p')).toBe(3);
      expect(seenBy(taskId, 1).values).toEqual(expected);
      expect(seenBy(taskId, 2).values).toEqual(expected);
      const checkpoints = (await checkpointsOf(pool, taskId)).filter((row) => row.name.startsWith('step:p'));
      expect(Object.fromEntries(checkpoints.map((row) => [row.name, row.value]))).toEqual({
        'step:p': 'call 1 from attempt 1', 'step:p#2': 'call 2 from attempt 1', 'step:p#3': 'call 3 from attempt 1',
      });
    });

    it('keeps a step explicitly named "x#2" apart from the second call of "x"', async () => {
      const { taskId } = await t.client.spawn(HashNamesTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      const expected = ['x, first call', 'the step named x#2', 'x, second call'];
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toEqual(expected);
      expect(callsOf(taskId, 'x')).toBe(2);
      expect(callsOf(taskId, 'x#2')).toBe(1);
      expect(seenBy(taskId, 2).values).toEqual(expected);
      const values = (await checkpointsOf(pool, taskId)).filter((row) => row.name !== 'step:fail-once').map((row) => row.value);
      expect(values.sort()).toEqual([...expected].sort());
    });
  });

  describe('JSON round trip of step results', () => {
    it('returns the JSON value on the first execution and identically on replay', async () => {
      const { taskId } = await t.client.spawn(JsonTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toEqual({
        date: '2024-01-02T03:04:05.678Z',
        object: { keep: 1, nested: [1, null, [null, 'two']], deep: {} },
        empty: null,
      });

      // 5 step functions, each called once: attempt 2 replayed them all.
      expect(callsOf(taskId, 'fn')).toBe(5);
      for (const attempt of [1, 2]) {
        const values = seenBy(taskId, attempt);
        expect(typeof values.date).toBe('string');
        expect(values.date).toBe('2024-01-02T03:04:05.678Z');
        expect(values.object).toStrictEqual({ keep: 1, nested: [1, null, [null, 'two']], deep: {} });
        expect(values.nothing).toBeUndefined();
        expect(values.empty).toBeNull();
        expect(values.custom).toStrictEqual({ custom: true });
      }

      const byName = new Map((await checkpointsOf(pool, taskId)).map((row) => [row.name, row]));
      expect(byName.get('step:date')).toMatchObject({ value: '2024-01-02T03:04:05.678Z', json_type: 'string', sql_null: false });
      expect(byName.get('step:undefined')).toMatchObject({ value: null, sql_null: true, json_type: null });
      expect(byName.get('step:null')).toMatchObject({ value: null, sql_null: false, json_type: 'null' });
      expect(byName.get('step:object')?.value).toStrictEqual({ keep: 1, nested: [1, null, [null, 'two']], deep: {} });
      expect(byName.get('step:toJSON')?.value).toStrictEqual({ custom: true });
    });

    it('shows a replay the same object (key order included) as the first execution', async () => {
      const { taskId } = await t.client.spawn(JsonTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      await t.client.awaitResult(taskId, { timeoutMs: 20_000 });
      // Key order is observable (Object.keys, JSON.stringify, hashing a result): "first runs
      // and replays see identical values" includes it.
      expect(Object.keys(seenBy(taskId, 2).object as object)).toEqual(Object.keys(seenBy(taskId, 1).object as object));
      expect(JSON.stringify(seenBy(taskId, 2))).toBe(JSON.stringify(seenBy(taskId, 1)));
    });

    it('persists and replays a 1 MiB string result intact', async () => {
      const { taskId } = await t.client.spawn(BigTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe(BIG.length);
      expect(callsOf(taskId, 'big')).toBe(1);
      expect(seenBy(taskId, 1).big).toBe(BIG);
      expect(seenBy(taskId, 2).big).toBe(BIG);
      const { rows } = await pool.query(
        `select value #>> '{}' as text from durable.checkpoints where task_id = $1 and name = 'step:big'`,
        [taskId],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0].text === BIG).toBe(true);
    });

    it('completes a 60-step workflow with 60 step checkpoints, replaying all of them once', async () => {
      const { taskId } = await t.client.spawn(SixtyStepsTask, {}, { maxAttempts: 3, retry: FAST_RETRY });
      await expect(t.client.awaitResult(taskId, { timeoutMs: 30_000 })).resolves.toBe((60 * 61) / 2);
      expect(callsOf(taskId, 'fn')).toBe(60);
      const checkpoints = await checkpointsOf(pool, taskId);
      const steps = checkpoints.filter((row) => /^step:s\d+$/.test(row.name));
      expect(steps).toHaveLength(60);
      expect(new Set(steps.map((row) => row.name))).toEqual(new Set(Array.from({ length: 60 }, (_, i) => `step:s${i + 1}`)));
      for (const row of steps) {
        expect(row.value).toBe(Number(row.name.slice('step:s'.length)));
        expect(row.attempt).toBe(1);
      }
      expect(checkpoints).toHaveLength(61); // plus step:fail-once
    });
  });

  describe('step results that are not JSON', () => {
    const kinds: BadKind[] = [
      'bigint', 'function in object', 'bare function', 'symbol in object', 'cycle', 'NUL in string',
      'NUL in key', 'lone surrogate', 'lone low surrogate',
    ];
    it.each(kinds)('%s: fails the task at once with SerializationError and stores no checkpoint for it', async (kind) => {
      const { taskId } = await t.client.spawn(BadStepTask, { kind }, { maxAttempts: 5, retry: FAST_RETRY });
      const failure = await failureOf(t, taskId);
      expect(failure.error.name).toBe('SerializationError');
      expect(failure.error.message).toMatch(/step "bad"/);

      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 1, result: null, error: { name: 'SerializationError' } });
      const runs = await runsOf(pool, taskId);
      expect(runs.map((run) => [run.attempt, run.state])).toEqual([[1, 'failed']]);
      expect(runs[0].error?.name).toBe('SerializationError');
      expect((await checkpointsOf(pool, taskId)).map((row) => row.name)).toEqual(['step:fine']);
      expect(callsOf(taskId, 'bad')).toBe(1);
      expect(callsOf(taskId, 'after bad')).toBe(0);
    });
  });

  describe('params and headers', () => {
    it('hands the handler JSON round-tripped params on the first execution, and the headers as ctx.headers', async () => {
      const params = {
        when: new Date('2025-06-07T08:09:10.111Z'),
        gone: undefined,
        list: [undefined, 1, { inner: undefined, x: 'y' }],
        custom: { toJSON: () => 'from toJSON' },
      };
      const headers = { traceId: 'abc-123', 'X-Case': 'upper', 'x-case': 'lower', nested: { at: new Date(0) } };
      // A task name string is used so the params need not match the handler's type.
      const { taskId } = await t.client.spawn('steps-params', params, { headers });
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('ok');

      const expectedParams = { when: '2025-06-07T08:09:10.111Z', list: [null, 1, { x: 'y' }], custom: 'from toJSON' };
      const expectedHeaders = { traceId: 'abc-123', 'X-Case': 'upper', 'x-case': 'lower', nested: { at: '1970-01-01T00:00:00.000Z' } };
      const values = seenBy(taskId, 1);
      expect(values.params).toStrictEqual(expectedParams);
      expect(typeof (values.params as { when: unknown }).when).toBe('string');
      expect(values.headers).toStrictEqual(expectedHeaders);
      expect(values.headersFrozen).toBe(true);

      const snapshot = await t.client.getTask(taskId);
      expect(snapshot?.params).toStrictEqual(expectedParams);
      expect(snapshot?.headers).toStrictEqual(expectedHeaders);
    });

    it('gives ctx.headers an empty object when no headers were passed', async () => {
      const { taskId } = await t.client.spawn('steps-params', [1, 'two']);
      await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('ok');
      expect(seenBy(taskId, 1).params).toStrictEqual([1, 'two']);
      expect(seenBy(taskId, 1).headers).toStrictEqual({});
    });
  });

  describe('failures and retries', () => {
    it('fails after one attempt on NonRetryableError despite maxAttempts 5', async () => {
      const { taskId } = await t.client.spawn(FailingTask, { how: 'non-retryable' }, { maxAttempts: 5, retry: FAST_RETRY });
      const failure = await failureOf(t, taskId);
      expect(failure.error).toMatchObject({ name: 'NonRetryableError', message: 'give up on attempt 1' });
      expect(await taskRow(pool, taskId)).toMatchObject({
        state: 'failed', attempts: 1, error: { name: 'NonRetryableError', message: 'give up on attempt 1' },
      });
      expect((await runsOf(pool, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'failed']]);
      expect(callsOf(taskId, 'run')).toBe(1);
    });

    it('retries a plain error up to maxAttempts, then fails with the last error recorded', async () => {
      const { taskId } = await t.client.spawn(FailingTask, { how: 'plain' }, { maxAttempts: 3, retry: { kind: 'fixed', delayMs: 10 } });
      const failure = await failureOf(t, taskId);
      expect(failure.error).toMatchObject({ name: 'FlakyError', message: 'fail on attempt 3' });
      expect(await taskRow(pool, taskId)).toMatchObject({
        state: 'failed', attempts: 3, error: { name: 'FlakyError', message: 'fail on attempt 3' },
      });
      const runs = await runsOf(pool, taskId);
      expect(runs.map((run) => [run.attempt, run.state, run.error?.name, run.error?.message])).toEqual([
        [1, 'failed', 'FlakyError', 'fail on attempt 1'],
        [2, 'failed', 'FlakyError', 'fail on attempt 2'],
        [3, 'failed', 'FlakyError', 'fail on attempt 3'],
      ]);
      expect(callsOf(taskId, 'run')).toBe(3);
      // The step before the throw ran once and was replayed by attempts 2 and 3.
      expect(callsOf(taskId, 'before')).toBe(1);
      // Give a (wrong) fourth attempt the chance to show up.
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await runsOf(pool, taskId)).toHaveLength(3);
      expect(callsOf(taskId, 'run')).toBe(3);
    });

    it('treats a subclass of NonRetryableError as final and records its own name', async () => {
      const { taskId } = await t.client.spawn(FailingTask, { how: 'non-retryable subclass' }, { maxAttempts: 5, retry: FAST_RETRY });
      const failure = await failureOf(t, taskId);
      expect(failure.error).toMatchObject({ name: 'PaymentDeclinedError', message: 'card declined' });
      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 1 });
      expect(callsOf(taskId, 'run')).toBe(1);
    });

    it('records a thrown non-Error as name Error with its text as message', async () => {
      const { taskId } = await t.client.spawn(FailingTask, { how: 'string' }, { maxAttempts: 2, retry: FAST_RETRY });
      const failure = await failureOf(t, taskId);
      expect(failure.error).toMatchObject({ name: 'Error', message: 'a thrown string' });
      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 2 });
    });

    it('records an error whose message Postgres cannot store as such, and still fails the task', async () => {
      const { taskId } = await t.client.spawn(FailingTask, { how: 'unstorable message' }, { maxAttempts: 1 });
      const failure = await failureOf(t, taskId);
      expect(failure.error.name).toBe('FlakyError');
      expect(failure.error.message).toMatch(/^NUL .* and lone .* surrogate$/);
      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 1 });
      expect((await runsOf(pool, taskId)).map((run) => run.state)).toEqual(['failed']);
    });

    it("fails after one attempt with retry kind 'none'", async () => {
      const { taskId } = await t.client.spawn(FailingTask, { how: 'plain' }, { maxAttempts: 5, retry: { kind: 'none' } });
      const failure = await failureOf(t, taskId);
      expect(failure.error).toMatchObject({ name: 'FlakyError', message: 'fail on attempt 1' });
      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 1 });
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect((await runsOf(pool, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'failed']]);
      expect(callsOf(taskId, 'run')).toBe(1);
    });
  });

  describe('task results that are not JSON', () => {
    const kinds: BadKind[] = ['bigint', 'function in object', 'cycle', 'NUL in string', 'lone surrogate', 'symbol in object'];
    it.each(kinds)('%s: fails the task at once with SerializationError', async (kind) => {
      const { taskId } = await t.client.spawn(BadResultTask, { kind }, { maxAttempts: 5, retry: FAST_RETRY });
      const failure = await failureOf(t, taskId);
      expect(failure.error.name).toBe('SerializationError');
      expect(failure.error.message).toMatch(/result of task "steps-bad-result"/);
      expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 1, result: null, error: { name: 'SerializationError' } });
      expect((await runsOf(pool, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'failed']]);
      expect(callsOf(taskId, 'run')).toBe(1);
    });
  });
});

// A step that throws: checked between the attempts, which the test clock holds apart.
@DurableTask({ name: 'steps-throwing-step' })
class ThrowingStepTask implements DurableTaskHandler<Record<string, never>, string> {
  async run(_params: Record<string, never>, ctx: TaskContext) {
    const before = await ctx.step('before', () => {
      bump(ctx.taskId, 'before');
      return 'before';
    });
    const flaky = await ctx.step('flaky', () => {
      bump(ctx.taskId, 'flaky');
      if (ctx.attempt === 1) throw new Error('flaky fails on attempt 1');
      return `flaky on attempt ${ctx.attempt}`;
    });
    return `${before} ${flaky}`;
  }
}

@DurableTask({ name: 'steps-oversized', queue: 'small-payloads' })
class OversizedStepTask implements DurableTaskHandler<{ size: number }, number> {
  async run(params: { size: number }, ctx: TaskContext) {
    await ctx.step('fine', () => 'fine');
    const text = await ctx.step('sized', () => {
      bump(ctx.taskId, 'sized');
      return 'x'.repeat(params.size);
    });
    return text.length;
  }
}

describe('a step that throws (test clock)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let small: DurableTestApp;
  let pool: pg.Pool;
  const HOUR = 3_600_000;

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    t = await startApp(db.url, [ThrowingStepTask]);
    small = await startApp(db.url, [OversizedStepTask], { queue: 'small-payloads', maxPayloadBytes: 1000 });
  });
  afterAll(async () => {
    await small?.close();
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('stores nothing and runs again on the next attempt', async () => {
    const { taskId } = await t.client.spawn(ThrowingStepTask, {}, { maxAttempts: 3, retry: { kind: 'fixed', delayMs: HOUR } });

    // Attempt 1 failed; attempt 2 waits an hour of database time.
    await eventually(async () => (await runsOf(pool, taskId)).length === 2, 15_000, 'attempt 2 to be scheduled');
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'pending', attempts: 2, error: { name: 'Error', message: 'flaky fails on attempt 1' } });
    expect((await runsOf(pool, taskId)).map((run) => [run.attempt, run.state])).toEqual([[1, 'failed'], [2, 'pending']]);
    expect((await checkpointsOf(pool, taskId)).map(({ name, value, attempt }) => ({ name, value, attempt }))).toEqual([
      { name: 'step:before', value: 'before', attempt: 1 },
    ]);
    expect(callsOf(taskId, 'flaky')).toBe(1);

    await advanceClock(pool, HOUR + 1000);
    await expect(t.client.awaitResult(taskId, { timeoutMs: 20_000 })).resolves.toBe('before flaky on attempt 2');
    expect(callsOf(taskId, 'before')).toBe(1);
    expect(callsOf(taskId, 'flaky')).toBe(2);
    expect((await checkpointsOf(pool, taskId)).map(({ name, value, attempt }) => ({ name, value, attempt }))).toEqual([
      { name: 'step:before', value: 'before', attempt: 1 },
      { name: 'step:flaky', value: 'flaky on attempt 2', attempt: 2 },
    ]);
  });

  it('fails the task with SerializationError and stores nothing when a step result exceeds maxPayloadBytes', async () => {
    const { taskId } = await small.client.spawn(OversizedStepTask, { size: 2000 }, { maxAttempts: 5, retry: FAST_RETRY });
    const failure = await failureOf(small, taskId);
    expect(failure.error.name).toBe('SerializationError');
    expect(failure.error.message).toMatch(/maxPayloadBytes/);
    expect(await taskRow(pool, taskId)).toMatchObject({ state: 'failed', attempts: 1 });
    expect((await checkpointsOf(pool, taskId)).map((row) => row.name)).toEqual(['step:fine']);
    expect(callsOf(taskId, 'sized')).toBe(1);

    // Just under the limit (2 bytes of quotes) it is stored.
    const under = await small.client.spawn(OversizedStepTask, { size: 998 }, { maxAttempts: 5, retry: FAST_RETRY });
    await expect(small.client.awaitResult(under.taskId, { timeoutMs: 20_000 })).resolves.toBe(998);
  });
});
