/**
 * resolveOptions: every documented default is filled in, and a bad value is refused with an
 * InvalidArgumentError naming the option, before anything connects (no database here).
 */
import { hostname } from 'node:os';
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { resolveOptions, type WorkerSettings } from '../../lib/engine/options.js';
import type { DurableModuleOptions } from '../../lib/interfaces/durable-options.interface.js';

describe('resolveOptions defaults', () => {
  it('fills in every documented default', () => {
    const resolved = resolveOptions({});
    expect(resolved.client).toEqual({ queue: 'default', defaults: {}, maxPayloadBytes: 16 * 1024 * 1024 });
    expect(resolved.connection).toEqual({
      databaseUrl: undefined,
      dataSource: undefined,
      schema: 'durable',
      migrationsRun: true,
      poolSize: 10,
      queryTimeoutMs: 20_000,
    });
    expect(resolved.worker).toEqual({
      queues: ['default'],
      concurrency: 10,
      pollIntervalMs: 1000,
      leaseMs: 120_000,
      shutdownTimeoutMs: 30_000,
      unknownTaskDelayMs: 15_000,
      workerId: expect.stringMatching(new RegExp(`^${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${process.pid}:[0-9a-f]{8}$`)) as string,
      maxPayloadBytes: 16 * 1024 * 1024,
      maxCheckpointBytesPerTask: 256 * 1024 * 1024,
    } satisfies WorkerSettings);
  });

  it('gives each start a worker id of its own by default (hostname:pid:random)', () => {
    const ids = new Set(Array.from({ length: 20 }, () => (resolveOptions({}).worker as WorkerSettings).workerId));
    expect(ids.size).toBe(20);
    for (const id of ids) expect(id.startsWith(`${hostname()}:${process.pid}:`)).toBe(true);
  });

  it('keeps the given values', () => {
    const resolved = resolveOptions({
      databaseUrl: 'postgres://x', schema: 'jobs', queue: 'mail', migrationsRun: false, poolSize: 3,
      queryTimeoutMs: 5, maxPayloadBytes: 1024, maxCheckpointBytesPerTask: 4096, defaults: { maxAttempts: 2 },
      worker: { queues: ['a', 'b'], concurrency: 1, pollIntervalMs: 7, leaseMs: 8, shutdownTimeoutMs: 0, unknownTaskDelayMs: 0, workerId: 'w1' },
    });
    expect(resolved.connection).toMatchObject({ databaseUrl: 'postgres://x', schema: 'jobs', migrationsRun: false, poolSize: 3, queryTimeoutMs: 5 });
    expect(resolved.client).toEqual({ queue: 'mail', defaults: { maxAttempts: 2 }, maxPayloadBytes: 1024 });
    expect(resolved.worker).toEqual({
      queues: ['a', 'b'], concurrency: 1, pollIntervalMs: 7, leaseMs: 8, shutdownTimeoutMs: 0,
      unknownTaskDelayMs: 0, workerId: 'w1', maxPayloadBytes: 1024, maxCheckpointBytesPerTask: 4096,
    });
  });

  it('gives no worker settings for worker: false', () => {
    expect(resolveOptions({ worker: false }).worker).toBe(false);
  });

  it('makes the worker poll a custom module queue by default', () => {
    const resolved = resolveOptions({ queue: 'billing', worker: { concurrency: 2 } });
    expect(resolved.worker).toMatchObject({ queues: ['billing'], concurrency: 2 });
  });

  it('passes maxPayloadBytes on to the worker', () => {
    expect(resolveOptions({ maxPayloadBytes: 99 }).worker).toMatchObject({ maxPayloadBytes: 99 });
  });
});

describe('resolveOptions refusals', () => {
  const cases: [string, DurableModuleOptions, RegExp][] = [
    ['upper-case schema', { schema: 'Bad' }, /^schema must be/],
    ['pg_* schema', { schema: 'pg_x' }, /^schema must be.*"pg_x"/],
    ['information_schema', { schema: 'information_schema' }, /^schema must be/],
    ['49-character schema', { schema: 'a'.repeat(49) }, /^schema must be.*at most 48/],
    ['poolSize 0', { poolSize: 0 }, /^poolSize must be an integer/],
    ['poolSize 1.5', { poolSize: 1.5 }, /^poolSize must be an integer.*1\.5/],
    ['queryTimeoutMs 0', { queryTimeoutMs: 0 }, /^queryTimeoutMs must be .* > 0/],
    ['queryTimeoutMs NaN', { queryTimeoutMs: NaN }, /^queryTimeoutMs must be .*NaN/],
    ['empty queue', { queue: '' }, /^queue must be a non-empty string/],
    ['maxPayloadBytes 0', { maxPayloadBytes: 0 }, /^maxPayloadBytes must be an integer/],
    ['maxCheckpointBytesPerTask 0', { maxCheckpointBytesPerTask: 0 }, /^maxCheckpointBytesPerTask must be an integer/],
    ['maxCheckpointBytesPerTask 1.5', { maxCheckpointBytesPerTask: 1.5, worker: false }, /^maxCheckpointBytesPerTask must be an integer/],
    ['defaults.maxAttempts 0', { defaults: { maxAttempts: 0 } }, /^maxAttempts must be an integer/],
    ['defaults.retry of an unknown kind', { defaults: { retry: { kind: 'weird' } as never } }, /^retry must be \{ kind:/],
    ['worker.concurrency 0', { worker: { concurrency: 0 } }, /^worker\.concurrency must be an integer/],
    ['empty worker.queues', { worker: { queues: [] } }, /^worker\.queues must be a non-empty array/],
    ['empty name in worker.queues', { worker: { queues: ['a', ''] } }, /^worker\.queues\[\] must be a non-empty string/],
    ['worker.pollIntervalMs 0', { worker: { pollIntervalMs: 0 } }, /^worker\.pollIntervalMs must be .* > 0/],
    ['worker.leaseMs -1', { worker: { leaseMs: -1 } }, /^worker\.leaseMs must be .*-1/],
    ['worker.shutdownTimeoutMs -1', { worker: { shutdownTimeoutMs: -1 } }, /^worker\.shutdownTimeoutMs must be .* >= 0/],
    ['worker.unknownTaskDelayMs Infinity', { worker: { unknownTaskDelayMs: Infinity } }, /^worker\.unknownTaskDelayMs must be/],
    ['empty worker.workerId', { worker: { workerId: '' } }, /^worker\.workerId must be a non-empty string/],
  ];

  it.each(cases)('refuses %s', (_label, options, message) => {
    const refusal = catchError(() => resolveOptions(options));
    expect(refusal).toBeInstanceOf(InvalidArgumentError);
    expect((refusal as Error).message).toMatch(message);
  });

  it('accepts a 48-character schema and the other edge values', () => {
    expect(() => resolveOptions({ schema: 'a'.repeat(48), poolSize: 1, maxPayloadBytes: 1, worker: { concurrency: 1, pollIntervalMs: 1, leaseMs: 1 } }))
      .not.toThrow();
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a refusal, but nothing was thrown');
}
