import { hostname } from 'node:os';
import type { WorkerOptions } from '../interfaces/durable-options.interface.js';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { assertDuration, assertName, assertPositiveInteger } from './validation.js';
import type { ResolvedWorkerOptions } from './worker.js';

/** Fills in the documented defaults and refuses bad values, naming the option. */
export function resolveWorkerOptions(options: WorkerOptions, queue: string, maxPayloadBytes: number): ResolvedWorkerOptions {
  const resolved: ResolvedWorkerOptions = {
    queues: options.queues ?? [queue],
    concurrency: options.concurrency ?? 10,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    leaseMs: options.leaseMs ?? 120_000,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 30_000,
    workerId: options.workerId ?? `${hostname()}:${process.pid}`,
    unknownTaskDelayMs: options.unknownTaskDelayMs ?? 15_000,
    maxPayloadBytes,
  };
  if (!Array.isArray(resolved.queues) || resolved.queues.length === 0) {
    throw new InvalidArgumentError('worker.queues must be a non-empty array of queue names');
  }
  resolved.queues.forEach((name) => assertName(name, 'worker.queues[]'));
  assertPositiveInteger(resolved.concurrency, 'worker.concurrency');
  assertDuration(resolved.pollIntervalMs, 'worker.pollIntervalMs', true);
  assertDuration(resolved.leaseMs, 'worker.leaseMs', true);
  assertDuration(resolved.shutdownTimeoutMs, 'worker.shutdownTimeoutMs');
  assertDuration(resolved.unknownTaskDelayMs, 'worker.unknownTaskDelayMs');
  assertName(resolved.workerId, 'worker.workerId');
  return resolved;
}
