/**
 * The SQL layer without a database: the batch JSON encoders (values are JSON text spliced in
 * as given) and buildStatements (the schema checked and quoted, each value at its $n, never in
 * the text).
 */
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { encodeSpawns, encodeWrites } from '../../lib/engine/sql/batch-json.js';
import { buildStatements, type RunFence, type SpawnRow, type Statement, type WorkerWrite } from '../../lib/engine/sql/statements.js';

const runAt = new Date('2030-01-02T03:04:05.006Z');
const spawnRow: SpawnRow = {
  queue: 'q"ueue', name: 'send\\email', params: '{"to":"a@b.c","n":[1,2]}', headers: '{"trace":"t1"}', maxAttempts: 5,
  retry: '{"kind":"none"}', cancellation: '{"maxDelayMs":10}', idempotencyKey: 'key-1', delayMs: 250, runAt,
  priority: -3, concurrencyKey: 'cust"1',
};
const bareRow: SpawnRow = { ...spawnRow, cancellation: null, idempotencyKey: null, delayMs: null, runAt: null, priority: 0, concurrencyKey: null };

describe('encodeSpawns', () => {
  it('writes one positional array per spawn, values spliced in as JSON', () => {
    const parsed = JSON.parse(encodeSpawns([spawnRow, bareRow]));
    expect(parsed).toEqual([
      ['q"ueue', 'send\\email', { to: 'a@b.c', n: [1, 2] }, { trace: 't1' }, 5, { kind: 'none' }, { maxDelayMs: 10 }, 'key-1', 250, '2030-01-02T03:04:05.006Z', -3, 'cust"1'],
      ['q"ueue', 'send\\email', { to: 'a@b.c', n: [1, 2] }, { trace: 't1' }, 5, { kind: 'none' }, null, null, null, null, 0, null],
    ]);
  });

  it('splices the JSON text in as given, without writing it again', () => {
    const text = encodeSpawns([{ ...spawnRow, params: '{ "b" : 1,  "a" : 2 }' }]);
    expect(text).toContain(',{ "b" : 1,  "a" : 2 },');
  });

  it('encodes no spawns as an empty array', () => {
    expect(encodeSpawns([])).toBe('[]');
  });
});

describe('encodeWrites', () => {
  const checkpoint: WorkerWrite = { kind: 'checkpoint', taskId: 't1', runId: 'r1', epoch: 3, name: 'step:a#2', value: '{"ok":true}', attempt: 2, leaseMs: 120000 };
  const completion: WorkerWrite = { kind: 'complete', taskId: 't2', runId: 'r2', epoch: 1, value: null, attempt: 1, leaseMs: 5000 };

  it('writes one object per write with the documented keys', () => {
    const parsed = JSON.parse(encodeWrites([checkpoint, completion]));
    expect(parsed).toEqual([
      { kind: 'checkpoint', task_id: 't1', run_id: 'r1', epoch: 3, name: 'step:a#2', value: { ok: true }, undefined: false, attempt: 2, lease_ms: 120000 },
      { kind: 'complete', task_id: 't2', run_id: 'r2', epoch: 1, name: null, value: null, undefined: true, attempt: 1, lease_ms: 5000 },
    ]);
    expect(Object.keys(parsed[0])).toEqual(['kind', 'task_id', 'run_id', 'epoch', 'name', 'value', 'undefined', 'attempt', 'lease_ms']);
  });

  it('tells a stored JSON null from undefined', () => {
    const [stored] = JSON.parse(encodeWrites([{ ...checkpoint, value: 'null' }]));
    expect(stored).toMatchObject({ value: null, undefined: false });
  });

  it('escapes checkpoint names', () => {
    const [write] = JSON.parse(encodeWrites([{ ...checkpoint, name: 'step:"quoted"\\\n' }]));
    expect(write.name).toBe('step:"quoted"\\\n');
  });
});

describe('buildStatements', () => {
  it.each(['Bad', 'pg_x', 'information_schema', 'a'.repeat(49), 'x"; drop table t; --'])('refuses the schema %j', (schema) => {
    expect(() => buildStatements(schema)).toThrow(InvalidArgumentError);
  });

  const sql = buildStatements('durable');
  const fence: RunFence = { taskId: 'FENCE_TASK', runId: 'FENCE_RUN', workerId: 'FENCE_WORKER', epoch: 7 };

  // [builder, statement, the values in the order of $1, $2, ...]
  const cases: [string, Statement, unknown[]][] = [
    ['spawn', sql.spawn(spawnRow), ['q"ueue', 'send\\email', spawnRow.params, spawnRow.headers, 5, spawnRow.retry, spawnRow.cancellation, 'key-1', 250, runAt, -3, 'cust"1']],
    ['spawnBatch', sql.spawnBatch([spawnRow]), [encodeSpawns([spawnRow])]],
    ['emit', sql.emit('EV_QUEUE', 'EV_NAME', '{"p":1}'), ['EV_QUEUE', 'EV_NAME', '{"p":1}']],
    ['claim', sql.claim({ queues: ['Q1', 'Q2'], workerId: 'W1', limit: 7, leaseMs: 9000, sweep: true }), [['Q1', 'Q2'], 'W1', 7, 9000, true, null]],
    ['claim from a first queue', sql.claim({ queues: ['Q1', 'Q2'], workerId: 'W1', limit: 7, leaseMs: 9000, sweep: true, firstQueue: 1 }),
      [['Q1', 'Q2'], 'W1', 7, 9000, true, 1]],
    ['writeBatch', sql.writeBatch('W1', []), ['W1', '[]']],
    ['heartbeat', sql.heartbeat(fence, 4000), ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, 4000]],
    ['fail', sql.fail(fence, '{"message":"ERR"}', true), ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, '{"message":"ERR"}', true]],
    ['defer', sql.defer(fence, 15000, true), ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, 15000, true]],
    ['sleep', sql.sleep(fence, { key: 'sleep:NAP', wakeAt: runAt, durationMs: null, attempt: 3, leaseMs: 8000 }),
      ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, 'sleep:NAP', runAt, null, 3, 8000]],
    ['awaitEvent', sql.awaitEvent(fence, { queue: 'EQ', eventName: 'PAID', key: 'event:PAID', timeoutMs: 60000, attempt: 1, leaseMs: 8000 }),
      ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, 'EQ', 'PAID', 'event:PAID', 60000, 1, 8000]],
    ['emitFromTask', sql.emitFromTask(fence, { key: 'emit:SHIPPED', queue: 'EQ', eventName: 'SHIPPED', payload: '{"id":1}', attempt: 2, leaseMs: 8000 }),
      ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, 'emit:SHIPPED', 'EQ', 'SHIPPED', '{"id":1}', 2, 8000]],
    ['spawnChild', sql.spawnChild(fence, { key: 'spawn:KID', row: spawnRow, attempt: 2, leaseMs: 8000 }),
      ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, 'spawn:KID', 'q"ueue', 'send\\email', spawnRow.params, spawnRow.headers, 5, spawnRow.retry,
        spawnRow.cancellation, 'key-1', 250, runAt, 2, 8000, -3, 'cust"1']],
    ['joinTasks', sql.joinTasks(fence, { key: 'joinAll:C1', children: ['C1', 'C2'], any: false, timeoutMs: 5000, attempt: 1, leaseMs: 8000 }),
      ['FENCE_TASK', 'FENCE_RUN', 'FENCE_WORKER', 7, 'joinAll:C1', ['C1', 'C2'], false, 5000, 1, 8000]],
    ['readCheckpoint', sql.readCheckpoint('TASK_X', 'step:CP'), ['TASK_X', 'step:CP']],
    ['releaseRuns', sql.releaseRuns('W1', ['RUN_A', 'RUN_B']), ['W1', ['RUN_A', 'RUN_B']]],
    ['cancel', sql.cancel('TASK_X'), ['TASK_X']],
    ['retry', sql.retry('TASK_X'), ['TASK_X']],
    ['getTask', sql.getTask('TASK_X'), ['TASK_X']],
    ['taskExists', sql.taskExists('TASK_X'), ['TASK_X']],
    ['getTasks', sql.getTasks(['TASK_X', 'TASK_Y']), [['TASK_X', 'TASK_Y']]],
    ['watchRefresh', sql.watchRefresh('WATCHER', ['TASK_X'], ['TASK_Y'], 60000), ['WATCHER', ['TASK_X'], ['TASK_Y'], 60000]],
    ['queueStats', sql.queueStats('SQ'), ['SQ']],
    ['swapLastExecutions', sql.swapLastExecutions([{ taskId: 'TASK_X', value: 'TRACE' }]), ['[{"task_id":"TASK_X","value":"TRACE"}]']],
    ['listTasks', sql.listTasks({ queue: 'LQ', state: 'failed', name: 'LN', cursor: 'CURSOR', limit: 50, parentTaskId: 'PARENT' }), ['LQ', 'failed', 'LN', 'CURSOR', 50, 'PARENT']],
    ['cleanup', sql.cleanup({ queue: 'CQ', olderThanMs: 86400000, limit: 1000 }), ['CQ', 86400000, 1000]],
    ['createQueue', sql.createQueue('NEW_Q'), ['NEW_Q']],
    ['dropQueue', sql.dropQueue('OLD_Q'), ['OLD_Q']],
    ['listQueues', sql.listQueues(), []],
    ['installTestClock', sql.installTestClock(), []],
    ['advanceTestClock', sql.advanceTestClock(31337), [31337]],
    ['syncFlowLimits', sql.syncFlowLimits([{ queue: 'FQ', name: 'FN', concurrency: 2, rateMax: null, ratePerMs: null }]),
      [JSON.stringify([{ queue: 'FQ', name: 'FN', concurrency: 2, rate_max: null, rate_per_ms: null }])]],
    ['upsertSchedule', sql.upsertSchedule({ name: 'SN', cron: '* * * * *', taskName: 'ST', queue: 'SQ', timezone: 'UTC', params: '{"a":1}', nextRunAt: runAt }),
      ['SN', '* * * * *', 'ST', 'SQ', 'UTC', '{"a":1}', runAt]],
    ['deleteSchedule', sql.deleteSchedule('SN'), ['SN']],
    ['dueSchedules', sql.dueSchedules(['SQ'], 100), [['SQ'], 100]],
    ['nextSchedule', sql.nextSchedule(['SQ']), [['SQ']]],
    ['fireSchedule', sql.fireSchedule({ name: 'SN', expected: runAt, next: runAt, row: spawnRow }),
      ['SN', runAt, runAt, 'q"ueue', 'send\\email', spawnRow.params, spawnRow.headers, 5, spawnRow.retry, spawnRow.cancellation, 'key-1']],
  ];

  it.each(cases)('%s puts its values in the order of its $n', (_name, statement, values) => {
    expect(statement.values).toEqual(values);
    const placeholders = [...statement.text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
    const highest = placeholders.length ? Math.max(...placeholders) : 0;
    expect(highest).toBe(values.length);
    expect(new Set(placeholders)).toEqual(new Set(values.map((_v, i) => i + 1)));
  });

  it.each(cases)('%s quotes the schema and splices no value into its text', (_name, { text, values }) => {
    expect(text).toMatch(/"durable"\./);
    expect(text.replaceAll('"durable"', '')).not.toMatch(/durable/);
    for (const value of values.flat()) {
      if (typeof value === 'string' && value.length > 1) expect(text).not.toContain(value);
      if (typeof value === 'number' && value > 1000) expect(text).not.toContain(String(value));
    }
  });

  it('has spawn take 12 values in the order of spawn_task', () => {
    const { text, values } = sql.spawn(spawnRow);
    expect(text).toContain('"durable".spawn_task($1, $2, $3::json, $4::json, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12)');
    expect(values).toHaveLength(12);
  });

  it('uses the same schema for its NOTIFY channels', () => {
    expect(buildStatements('jobs').channels).toEqual({ wakeup: 'jobs_wakeup', cancel: 'jobs_cancel', watch: 'jobs_watch' });
    expect(buildStatements('jobs').claim({ queues: [], workerId: 'w', limit: 1, leaseMs: 1, sweep: false }).text).toContain('"jobs".claim_tasks(');
  });
});
