/**
 * Names are data (property-based): task, queue, event, step and idempotency-key names drawn from
 * SQL fragments, quotes, backslashes, patterns, whitespace and unicode are stored and matched
 * exactly (no trimming, case folding, normalisation or pattern matching) and never executed.
 * Empty names and names with NUL are refused with InvalidArgumentError before anything is
 * written. The configurable schema name is validated before any connection.
 */
import { Test } from '@nestjs/testing';
import fc from 'fast-check';
import type pg from 'pg';
import {
  DatabaseUnavailableError, DurableClient, DurableModule, DurableTask, InvalidArgumentError, SerializationError,
  type DurableClientOptions, type DurableTaskHandler, type TaskContext, type TaskHandlerClass,
} from '../../lib/index.js';
import {
  SEED, SQL_FRAGMENTS, countRows, hostileName, nulName, outcomeOf, settle, unstorable, variantsOf,
} from '../fixtures/hostile-values.js';
import { sqlPool, startApp, type DurableTestApp } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const RUNS = 40;
const unique = (names: string[]) => [...new Set(names)];
const withVariants = (names: string[]) => unique(names.flatMap((name) => [name, ...variantsOf(name)]));

/** Task names with a handler each: hostile names and every variant of them, so a mix-up runs the wrong handler. */
const TASK_NAMES = withVariants([
  `'; drop table durable.tasks; --`, `") or 1=1 --`, '%', '_', 'Send-Email', 'straße',
  ...fc.sample(hostileName, { seed: SEED, numRuns: 8 }),
]);
/** Queues the worker polls, each with a handler of 'queue-echo'. */
const QUEUES = withVariants([`q'; drop table durable.runs; --`, 'Queue', ...fc.sample(hostileName, { seed: SEED + 1, numRuns: 3 })])
  .filter((queue) => queue !== 'default' && queue !== 'unpolled');

function namedHandler(name: string, queue: string | undefined, index: number): TaskHandlerClass {
  const Handler = class implements DurableTaskHandler<unknown, { name: string; queue: string | undefined; taskName: string; ctxQueue: string }> {
    async run(_params: unknown, ctx: TaskContext) {
      return { name, queue, taskName: ctx.taskName, ctxQueue: ctx.queue };
    }
  };
  Object.defineProperty(Handler, 'name', { value: `HostileNamed${queue === undefined ? 'Task' : 'Queue'}${index}` });
  DurableTask({ name, ...(queue === undefined ? {} : { queue }) })(Handler);
  return Handler;
}
const TASK_HANDLERS = new Map(TASK_NAMES.map((name, i) => [name, namedHandler(name, undefined, i)]));
const QUEUE_HANDLERS = QUEUES.map((queue, i) => namedHandler('queue-echo', queue, i));

/** Values (names with NUL, say) that cannot travel in params reach handlers through this registry. */
const registry = new Map<string, unknown>();
let registered = 0;
function register(value: unknown): string {
  const key = `names-${++registered}`;
  registry.set(key, value);
  return key;
}

@DurableTask({ name: 'names-waiter', maxAttempts: 1 })
class WaiterTask implements DurableTaskHandler<{ event: string }, unknown> {
  async run({ event }: { event: string }, ctx: TaskContext) {
    return ctx.awaitEvent(event, { timeoutMs: 120_000 });
  }
}

@DurableTask({ name: 'names-emitter', maxAttempts: 1 })
class EmitterTask implements DurableTaskHandler<{ event: string }, string> {
  async run({ event }: { event: string }, ctx: TaskContext) {
    await ctx.emitEvent(event, { name: event });
    return 'emitted';
  }
}

const stepCalls = new Map<string, number>();

/** Runs a step per name (the value is the name), fails attempt 1 after them, and replays. */
@DurableTask({ name: 'names-steps', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 0 } })
class StepsTask implements DurableTaskHandler<{ names: string[] }, string[]> {
  async run({ names }: { names: string[] }, ctx: TaskContext) {
    const values: string[] = [];
    for (const [i, name] of names.entries()) {
      values.push(await ctx.step(name, () => {
        const key = `${ctx.taskId}/${i}`;
        stepCalls.set(key, (stepCalls.get(key) ?? 0) + 1);
        return name;
      }));
    }
    if (ctx.attempt === 1) throw new Error('replay please');
    return values;
  }
}

/** Calls every context method with a name from the registry; records what each call threw. */
@DurableTask({ name: 'names-bad-calls', maxAttempts: 1 })
class BadCallsTask implements DurableTaskHandler<{ key: string }, Record<string, string>> {
  async run({ key }: { key: string }, ctx: TaskContext) {
    const name = registry.get(key) as string;
    const calls: Record<string, () => Promise<unknown>> = {
      step: () => ctx.step(name, () => {
        throw new Error('the step function must not run');
      }),
      awaitEvent: () => ctx.awaitEvent(name, { timeoutMs: 1 }),
      awaitEventStepName: () => ctx.awaitEvent('fine', { timeoutMs: 1, stepName: name }),
      emitEvent: () => ctx.emitEvent(name, 1),
      sleepFor: () => ctx.sleepFor(name, 1),
      sleepUntil: () => ctx.sleepUntil(name, new Date(0)),
    };
    const thrown: Record<string, string> = {};
    for (const [method, call] of Object.entries(calls)) {
      thrown[method] = await call().then(() => 'no error', (error: Error) => error.constructor.name);
    }
    return thrown;
  }
}

/** The step keys the contract promises: `step:<name>`, then `#2`, `#3` for repeats, never reusing a key. */
function expectedStepKeys(names: string[]): string[] {
  const calls = new Map<string, number>();
  const used = new Set<string>();
  return names.map((name) => {
    const base = `step:${name}`;
    let count = calls.get(base) ?? 0;
    let key: string;
    do {
      count += 1;
      key = count === 1 ? base : `${base}#${count}`;
    } while (used.has(key));
    calls.set(base, count);
    used.add(key);
    return key;
  });
}

const TABLES = ['queues', 'tasks', 'runs', 'checkpoints', 'events', 'waits', 'durable_migrations', 'test_clock'];

// ==================================================================================================

describe('names are data (property-based, real Postgres)', () => {
  let db: TestDatabase;
  let t: DurableTestApp;
  let pool: pg.Pool;
  const spawnedByName = new Map<string, number>();
  const spawnedByQueue = new Map<string, number>();

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = sqlPool(db.url);
    await pool.query('create table public.canary (note text); insert into public.canary values ($$still here$$)');
    t = await startApp(db.url, [...TASK_HANDLERS.values(), ...QUEUE_HANDLERS, WaiterTask, EmitterTask, StepsTask, BadCallsTask, LoneWaiterTask, LoneStepTask], {
      worker: { queues: ['default', ...QUEUES], concurrency: 40, pollIntervalMs: 100 },
    });
  });
  afterAll(async () => {
    await t?.close();
    await pool?.end();
    await db?.drop();
  });

  it('the samples are hostile: SQL, quotes, patterns, and variants differing only in case, spaces or normalisation', () => {
    expect(TASK_NAMES).toEqual(expect.arrayContaining([`'; drop table durable.tasks; --`, `'; DROP TABLE DURABLE.TASKS; --`, `''; drop table durable.tasks; --`, '%', '%%', 'SEND-EMAIL', 'STRASSE', ' _']));
    expect(TASK_NAMES.length).toBeGreaterThan(60);
    expect(QUEUES.length).toBeGreaterThan(15);
    expect(TASK_NAMES.every((name) => name.length > 0 && !unstorable(name))).toBe(true);
  });

  it('task names: a spawn by name (or class) runs the handler of exactly that name, and stores it exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...TASK_NAMES), fc.boolean()), { minLength: 1, maxLength: 10 }), async (batch) => {
        const spawned = await Promise.all(batch.map(([name, byClass]) => (byClass ? t.client.spawn(TASK_HANDLERS.get(name)!, {}) : t.client.spawn(name, {}))));
        await Promise.all(batch.map(async ([name], i) => {
          spawnedByName.set(name, (spawnedByName.get(name) ?? 0) + 1);
          const { taskId } = spawned[i];
          expect(await outcomeOf(t.client, taskId)).toEqual({ ok: true, value: { name, queue: undefined, taskName: name, ctxQueue: 'default' } });
          expect((await t.client.getTask(taskId))!.name).toBe(name);
          const { rows } = await pool.query('select name from durable.tasks where id = $1', [taskId]);
          expect(rows).toEqual([{ name }]);
        }));
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    // listTasks({ name }) matches exactly, too.
    for (const name of TASK_NAMES) {
      const listed = await t.client.listTasks({ name, limit: 1000 });
      expect({ name, count: listed.length, names: unique(listed.map((task) => task.name)) })
        .toEqual({ name, count: spawnedByName.get(name) ?? 0, names: spawnedByName.has(name) ? [name] : [] });
    }
  }, 120_000);

  it('queues: a task runs on exactly its queue, rows and listings keep the queue name exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...QUEUES), { minLength: 1, maxLength: 10 }), async (queues) => {
        const spawned = await Promise.all(queues.map((queue) => t.client.spawn('queue-echo', {}, { queue })));
        await Promise.all(queues.map(async (queue, i) => {
          spawnedByQueue.set(queue, (spawnedByQueue.get(queue) ?? 0) + 1);
          const { taskId } = spawned[i];
          expect(await outcomeOf(t.client, taskId)).toEqual({ ok: true, value: { name: 'queue-echo', queue, taskName: 'queue-echo', ctxQueue: queue } });
          const { rows } = await pool.query('select t.queue as task_queue, r.queue as run_queue from durable.tasks t join durable.runs r on r.task_id = t.id where t.id = $1', [taskId]);
          expect(rows).toEqual([{ task_queue: queue, run_queue: queue }]);
        }));
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    for (const queue of QUEUES) {
      const listed = await t.client.listTasks({ queue, limit: 1000 });
      expect({ queue, count: listed.length }).toEqual({ queue, count: spawnedByQueue.get(queue) ?? 0 });
    }
    const listedQueues = await t.client.listQueues();
    for (const queue of spawnedByQueue.keys()) expect(listedQueues.filter((name) => name === queue)).toEqual([queue]);
    expect(listedQueues.filter((name) => !spawnedByQueue.has(name) && name !== 'default')).toEqual([]);
  }, 120_000);

  it('event names: a waiter on X is woken only by X, never by a folded, trimmed, escaped or pattern variant of it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(hostileName, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 4 }), async (batch) => {
        // Every payload names its event, so repeats across runs (first emit wins) agree.
        const variants = unique(batch.flatMap(([name]) => variantsOf(name))).filter((variant) => !batch.some(([name]) => name === variant));
        await Promise.all(variants.map((variant) => t.client.emitEvent(variant, { name: variant })));
        const results = await Promise.all(batch.map(async ([name, emitFirst, fromTask]) => {
          const emit = () => (fromTask ? t.client.spawn(EmitterTask, { event: name }).then(() => undefined) : t.client.emitEvent(name, { name }));
          if (emitFirst) await emit();
          const { taskId } = await t.client.spawn(WaiterTask, { event: name });
          if (!emitFirst) await emit();
          return outcomeOf(t.client, taskId);
        }));
        const names = [...batch.map(([name]) => name), ...variants];
        const { rows } = await pool.query(`select name, payload from durable.events where queue = 'default' and name = any($1)`, [names]);
        batch.forEach(([name], i) => expect(results[i]).toEqual({ ok: true, value: { name } }));
        // One row per name, each with its own payload: stored and matched exactly.
        expect(rows.filter((row) => names.includes(row.name)).sort((a, b) => (a.name < b.name ? -1 : 1)))
          .toEqual(unique(names).sort().map((name) => ({ name, payload: { name } })));
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);

  it('step names: checkpoints are stored under exactly `step:<name>` (#2, #3 for repeats) and replayed by exact name', async () => {
    const stepName = fc.oneof(hostileName, fc.constantFrom('x', 'x#2', 'x#3', 'step:x', '#2', 'X', 'x '));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(stepName, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 4 }), async (tasks) => {
        const spawned = await Promise.all(tasks.map((names) => t.client.spawn(StepsTask, { names })));
        const results = await Promise.all(spawned.map(({ taskId }) => outcomeOf(t.client, taskId)));
        const { rows: checkpointRows } = await pool.query(
          'select task_id, name, value, attempt from durable.checkpoints where task_id = any($1)', [spawned.map((s) => s.taskId)],
        );
        for (const [i, names] of tasks.entries()) {
          const { taskId } = spawned[i];
          expect(results[i]).toEqual({ ok: true, value: names });
          const rows = checkpointRows.filter((row) => row.task_id === taskId).map(({ task_id: _id, ...row }) => row);
          const keys = expectedStepKeys(names);
          expect(rows.map((row) => row.name).sort()).toEqual([...keys].sort());
          const byKey = new Map(rows.map((row) => [row.name as string, row]));
          keys.forEach((key, j) => expect(byKey.get(key)).toEqual({ name: key, value: names[j], attempt: 1 }));
          // Each step function ran once: the replay found every checkpoint by its exact name.
          names.forEach((_name, j) => expect(stepCalls.get(`${taskId}/${j}`)).toBe(1));
        }
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);

  it('idempotency keys: the same key finds the same task; any variant of it is another key', async () => {
    const used = new Set<string>();
    await fc.assert(
      fc.asyncProperty(hostileName, async (key) => {
        const keys = [key, key, ...variantsOf(key)];
        const spawned = await Promise.all(keys.map((idempotencyKey) => t.client.spawn('never-run', {}, { queue: 'unpolled', idempotencyKey })));
        expect(spawned[1].taskId).toBe(spawned[0].taskId);
        expect(spawned[0].created && spawned[1].created).toBe(false);
        if (!used.has(key)) expect([spawned[0].created, spawned[1].created].filter(Boolean)).toHaveLength(1);
        expect(new Set(spawned.map((s) => s.taskId)).size).toBe(keys.length - 1);
        for (const [i, idempotencyKey] of keys.entries()) {
          const { rows } = await pool.query('select idempotency_key from durable.tasks where id = $1', [spawned[i].taskId]);
          expect(rows).toEqual([{ idempotency_key: idempotencyKey }]);
          used.add(idempotencyKey);
        }
        const { rows } = await pool.query(`select count(*)::int as n from durable.tasks where queue = 'unpolled' and idempotency_key = $1`, [key]);
        expect(rows[0].n).toBe(1);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  }, 120_000);

  it('empty names and names with NUL are refused with InvalidArgumentError by every client method, writing nothing', async () => {
    await fc.assert(
      fc.asyncProperty(nulName, async (bad) => {
        const before = await countRows(pool);
        const queuesBefore = await t.client.listQueues();
        const calls: Record<string, () => Promise<unknown>> = {
          'spawn name': () => t.client.spawn(bad, {}),
          'spawn queue': () => t.client.spawn('names-x', {}, { queue: bad }),
          'spawn idempotencyKey': () => t.client.spawn('names-x', {}, { idempotencyKey: bad }),
          'spawn header key': () => t.client.spawn('names-x', {}, { headers: { ok: 1, [bad]: 2 } }),
          'emitEvent name': () => t.client.emitEvent(bad, 1),
          'emitEvent queue': () => t.client.emitEvent('names-x', 1, { queue: bad }),
          createQueue: () => t.client.createQueue(bad),
          dropQueue: () => t.client.dropQueue(bad),
          'listTasks queue': () => t.client.listTasks({ queue: bad }),
          'listTasks name': () => t.client.listTasks({ name: bad }),
          'cleanup queue': () => t.client.cleanup({ queue: bad, olderThanMs: 0 }),
        };
        const thrown: Record<string, string> = {};
        for (const [what, call] of Object.entries(calls)) {
          const result = await settle(call);
          thrown[what] = result.ok ? 'no error' : result.error.constructor.name;
        }
        expect(thrown).toEqual(Object.fromEntries(Object.keys(calls).map((what) => [what, 'InvalidArgumentError'])));
        expect(await countRows(pool)).toEqual(before);
        expect(await t.client.listQueues()).toEqual(queuesBefore);
      }),
      { seed: SEED, numRuns: 40, endOnFailure: true },
    );
  }, 120_000);

  it('empty names and names with NUL are refused with InvalidArgumentError by every context method, writing nothing', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(nulName, { minLength: 1, maxLength: 8 }), async (names) => {
        const spawned = await Promise.all(names.map((name) => t.client.spawn(BadCallsTask, { key: register(name) })));
        const results = await Promise.all(spawned.map(({ taskId }) => outcomeOf(t.client, taskId)));
        for (const [i, { taskId }] of spawned.entries()) {
          expect(results[i]).toEqual({
            ok: true,
            value: {
              step: 'InvalidArgumentError', awaitEvent: 'InvalidArgumentError', awaitEventStepName: 'InvalidArgumentError',
              emitEvent: 'InvalidArgumentError', sleepFor: 'InvalidArgumentError', sleepUntil: 'InvalidArgumentError',
            },
          });
          const { rows } = await pool.query(
            `select (select count(*) from durable.checkpoints where task_id = $1)::int as checkpoints,
               (select count(*) from durable.waits where task_id = $1)::int as waits,
               (select count(*) from durable.runs where task_id = $1)::int as runs`, [taskId],
          );
          expect(rows).toEqual([{ checkpoints: 0, waits: 0, runs: 1 }]);
        }
      }),
      { seed: SEED, numRuns: 15, endOnFailure: true },
    );
    const { rows } = await pool.query(`select count(*)::int as n from durable.events where name like '%' || chr(1) || '%' or name = ''`);
    expect(rows[0].n).toBe(0);
  }, 120_000);

  // -------------------------------------------------------------------------------------------------
  // Names that cannot be stored exactly: refused with a typed error, or else they would be stored
  // as something else (a lone surrogate turns into U+FFFD on the way to Postgres) or fail as raw
  // database errors (an index row over the btree limit, a NOTIFY payload over 8000 bytes).

  /** 'ok' if refused with InvalidArgumentError or SerializationError, else what happened (and what was stored). */
  async function refusedTyped(call: () => Promise<unknown>, stored?: (value: unknown) => Promise<string>): Promise<string> {
    const result = await settle(call);
    if (result.ok) return stored ? `accepted, stored as ${await stored(result.value)}` : 'accepted';
    return result.error instanceof InvalidArgumentError || result.error instanceof SerializationError
      ? 'ok' : `${result.error.constructor.name}: ${result.error.message}`;
  }
  const codes = (text: string) => JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const storedTask = (column: string) => async (spawned: unknown) => {
    const { rows } = await pool.query(`select ${column} as v from durable.tasks where id = $1`, [(spawned as { taskId: string }).taskId]);
    return codes(rows[0].v as string);
  };

  it('names with a lone surrogate are refused with a typed error by the client, writing nothing (Postgres would store U+FFFD)', async () => {
    const before = await countRows(pool);
    const queuesBefore = await t.client.listQueues();
    const outcomes: Record<string, string> = {};
    for (const [i, bad] of ['\uD800', 'name\uDC00', 'x\uD83D'].entries()) {
      outcomes[`spawn name ${codes(bad)}`] = await refusedTyped(() => t.client.spawn(bad, {}, { queue: 'unpolled' }), storedTask('name'));
      outcomes[`spawn queue ${codes(bad)}`] = await refusedTyped(() => t.client.spawn('names-x', {}, { queue: bad }), storedTask('queue'));
      outcomes[`idempotencyKey ${codes(bad)}`] = await refusedTyped(() => t.client.spawn('names-x', {}, { queue: 'unpolled', idempotencyKey: bad }), storedTask('idempotency_key'));
      outcomes[`header key ${codes(bad)}`] = await refusedTyped(() => t.client.spawn('names-x', {}, { queue: 'unpolled', headers: { [bad]: 1 } }));
      outcomes[`emitEvent ${codes(bad)}`] = await refusedTyped(() => t.client.emitEvent(bad, { lone: i }), async () => {
        const { rows } = await pool.query(`select name from durable.events where payload::text = $1`, [JSON.stringify({ lone: i })]);
        return rows.map((row) => codes(row.name)).join(' or ');
      });
      outcomes[`createQueue ${codes(bad)}`] = await refusedTyped(() => t.client.createQueue(bad));
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((what) => [what, 'ok'])));
    expect(await countRows(pool)).toEqual(before);
    expect(await t.client.listQueues()).toEqual(queuesBefore);
  });

  it('a waiter on one lone-surrogate name is not woken by an emit of another', async () => {
    // '\uD800' and '\uDC00' are different names; both would reach Postgres as U+FFFD.
    const waiterName = register('lone-\uDC00');
    const { taskId } = await t.client.spawn(LoneWaiterTask, { key: waiterName });
    const emitted = await settle(() => t.client.emitEvent('lone-\uD800', 'for the other name'));
    const outcome = await outcomeOf(t.client, taskId, 3000);
    expect({ emitted: emitted.ok, waiter: outcome.ok ? outcome.value : 'not woken' }).not.toMatchObject({ waiter: 'for the other name' });
    await t.client.cancel(taskId);
  }, 120_000);

  it('step names with a lone surrogate fail the task with a typed error', async () => {
    const { taskId } = await t.client.spawn(LoneStepTask, { key: register('lone-\uD800') });
    const outcome = await outcomeOf(t.client, taskId);
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: { error?: { name: string; message: string } } }).error.error;
    expect([error?.name, error?.message]).toEqual([expect.stringMatching(/^(InvalidArgumentError|SerializationError)$/), expect.stringMatching(/step name|surrogate/)]);
  }, 120_000);

  it('very long names (10,000 characters) are stored and matched exactly, or refused with InvalidArgumentError writing nothing', async () => {
    // High-entropy text: Postgres cannot compress it under the btree limit of ~2700 bytes per index row.
    const long = Array.from(fc.sample(fc.integer({ min: 0x4e00, max: 0x9fff }), { seed: SEED, numRuns: 10_000 }), (code) => String.fromCodePoint(code)).join('');
    const repeated = 'a'.repeat(10_000);
    const outcomes: Record<string, string> = {};
    const judge = async (what: string, call: () => Promise<string | undefined>) => {
      const before = await countRows(pool);
      const result = await settle(call);
      if (result.ok) {
        outcomes[what] = result.value ?? 'ok';
      } else if (result.error instanceof InvalidArgumentError) {
        const after = await countRows(pool);
        outcomes[what] = JSON.stringify(after) === JSON.stringify(before) ? 'ok' : 'refused, but rows were written';
      } else {
        outcomes[what] = `${result.error.constructor.name}: ${result.error.message}`;
      }
    };
    for (const [label, name] of [['random', long], ['repeated', repeated]] as const) {
      await judge(`${label} task name`, async () => {
        const { taskId } = await t.client.spawn(name, {}, { queue: 'unpolled' });
        return (await t.client.getTask(taskId))!.name === name ? undefined : 'stored differently';
      });
      await judge(`${label} queue`, async () => {
        const { taskId } = await t.client.spawn('names-x', {}, { queue: name });
        return (await t.client.getTask(taskId))!.queue === name ? undefined : 'stored differently';
      });
      await judge(`${label} idempotency key`, async () => {
        const first = await t.client.spawn('names-x', {}, { queue: 'unpolled', idempotencyKey: name });
        const second = await t.client.spawn('names-x', {}, { queue: 'unpolled', idempotencyKey: name });
        return second.taskId === first.taskId && !second.created ? undefined : 'not deduplicated';
      });
      await judge(`${label} header key`, async () => {
        const { taskId } = await t.client.spawn('names-x', {}, { queue: 'unpolled', headers: { [name]: 1 } });
        return Object.keys((await t.client.getTask(taskId))!.headers)[0] === name ? undefined : 'stored differently';
      });
      await judge(`${label} event name`, async () => {
        await t.client.emitEvent(name, { long: label });
        const { taskId } = await t.client.spawn(WaiterTask, { event: name });
        const outcome = await outcomeOf(t.client, taskId);
        return outcome.ok && JSON.stringify(outcome.value) === JSON.stringify({ long: label }) ? undefined : 'waiter not woken';
      });
      await judge(`${label} step name`, async () => {
        const { taskId } = await t.client.spawn(StepsTask, { names: [name] });
        const outcome = await outcomeOf(t.client, taskId);
        if (outcome.ok) return JSON.stringify(outcome.value) === JSON.stringify([name]) ? undefined : 'replayed differently';
        const error = (outcome.error as { error?: { name: string; message: string } }).error;
        return error?.name === 'InvalidArgumentError' ? undefined : `the task failed with ${error?.name}: ${error?.message}`;
      });
    }
    expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((what) => [what, 'ok'])));
  }, 120_000);

  it('after all of it, every durable table and the app tables still exist', async () => {
    const { rows } = await pool.query(`select t as name, to_regclass('durable.' || t) is not null as exists from unnest($1::text[]) t`, [TABLES]);
    expect(rows).toEqual(TABLES.map((name) => ({ name, exists: true })));
    expect((await pool.query('select note from public.canary')).rows).toEqual([{ note: 'still here' }]);
    const schemas = await pool.query(`select nspname from pg_namespace where nspname in ('public', 'durable') order by nspname`);
    expect(schemas.rows).toEqual([{ nspname: 'durable' }, { nspname: 'public' }]);
    // And the worker still works.
    const { taskId } = await t.client.spawn(TASK_HANDLERS.get('%')!, {});
    expect(await outcomeOf(t.client, taskId)).toMatchObject({ ok: true, value: { name: '%' } });
  }, 120_000);
});

@DurableTask({ name: 'names-lone-waiter', maxAttempts: 1 })
class LoneWaiterTask implements DurableTaskHandler<{ key: string }, unknown> {
  async run({ key }: { key: string }, ctx: TaskContext) {
    return ctx.awaitEvent(registry.get(key) as string, { timeoutMs: 120_000 });
  }
}

@DurableTask({ name: 'names-lone-step', maxAttempts: 2, retry: { kind: 'fixed', delayMs: 0 } })
class LoneStepTask implements DurableTaskHandler<{ key: string }, unknown> {
  async run({ key }: { key: string }, ctx: TaskContext) {
    return ctx.step(registry.get(key) as string, () => 'value');
  }
}

// ==================================================================================================

/** A URL nothing listens on: a validation that connected first would fail differently. */
const CLOSED = 'postgres://durable:not-used@127.0.0.1:1/durable';
const SAFE_SCHEMA = /^[a-z_][a-z0-9_]{0,47}$/;
const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };

describe('the schema name', () => {
  const UNSAFE = [
    'a; drop schema public', 'durable"; drop schema public cascade; --', 'Durable', 'DURABLE', '1abc', '', ' durable', 'durable ',
    'dur able', 'dur-able', 'durable.tasks', '"durable"', 'x'.repeat(49), 'durable\u0000', 'dürable', 'durable\n', '$1', "dur'able",
  ];

  it.each(UNSAFE.map((schema) => [JSON.stringify(schema), schema]))('DurableClient.connect refuses schema %s with InvalidArgumentError before connecting', async (_label, schema) => {
    const result = await settle(() => DurableClient.connect({ databaseUrl: CLOSED, schema, logger: silent }));
    if (result.ok) await result.value.close();
    expect(result.ok).toBe(false);
    const error = (result as { error: Error }).error;
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error.message).toMatch(/schema must be a lower-case SQL identifier of at most 48 characters/);
  });

  it.each([['a; drop schema public'], ['Durable'], ['1abc'], [''], ['x'.repeat(49)]])('DurableModule.forRoot refuses schema %j with InvalidArgumentError before connecting', async (schema) => {
    const result = await settle(async () => {
      const moduleRef = await Test.createTestingModule({ imports: [DurableModule.forRoot({ databaseUrl: CLOSED, schema, worker: false })] }).setLogger(silent).compile();
      await moduleRef.close();
    });
    expect(result.ok).toBe(false);
    expect((result as { error: Error }).error).toBeInstanceOf(InvalidArgumentError);
    expect((result as { error: Error }).error.message).toMatch(/schema/);
  });

  it('forRootAsync checks the schema the factory returns, before connecting', async () => {
    const result = await settle(async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [DurableModule.forRootAsync({ useFactory: () => ({ databaseUrl: CLOSED, schema: 'x; drop table y', worker: false as const }) })],
      }).setLogger(silent).compile();
      await moduleRef.close();
    });
    expect((result as { error: Error }).error).toBeInstanceOf(InvalidArgumentError);
  });

  it('property: a schema is refused with InvalidArgumentError exactly when it is not a safe identifier; a safe one gets as far as connecting', async () => {
    const schema = fc.oneof(
      fc.stringMatching(/^[a-z_][a-z0-9_]{0,47}$/),
      fc.string({ unit: 'binary-ascii', maxLength: 50 }),
      fc.string({ unit: 'grapheme', maxLength: 50 }),
      fc.constantFrom(...SQL_FRAGMENTS),
      fc.integer({ min: 47, max: 50 }).map((n) => 'a'.repeat(n)),
    );
    await fc.assert(
      fc.asyncProperty(schema, async (name) => {
        const result = await settle(() => DurableClient.connect({ databaseUrl: CLOSED, schema: name, logger: silent } satisfies DurableClientOptions));
        if (result.ok) await result.value.close();
        expect(result.ok).toBe(false);
        const error = (result as { error: Error }).error;
        expect(error).toBeInstanceOf(SAFE_SCHEMA.test(name) ? DatabaseUnavailableError : InvalidArgumentError);
      }),
      { seed: SEED, numRuns: 100, endOnFailure: true },
    );
  }, 120_000);

  describe('safe names work (real Postgres)', () => {
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

    it.each([['_'], ['a'], ['durable_2'], ['x'.repeat(48)]])('schema %j holds durable\'s tables and serves spawns', async (schema) => {
      const client = await DurableClient.connect({ databaseUrl: db.url, schema, logger: silent });
      try {
        const { taskId } = await client.spawn('in-schema', { schema }, { queue: 'unpolled' });
        const { rows } = await pool.query(`select params from "${schema}".tasks where id = $1`, [taskId]);
        expect(rows).toEqual([{ params: { schema } }]);
        // Nothing went to the default schema.
        expect((await pool.query(`select count(*)::int as n from pg_namespace where nspname = 'durable'`)).rows).toEqual([{ n: 0 }]);
      } finally {
        await client.close();
      }
    });
  });
});
