import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { DurableTaskOptions, SpawnOptions } from '../../interfaces/task-options.interface.js';
import type { ClientSettings } from '../options.js';
import type { SpawnRow } from '../sql/statements.js';
import { toJson } from '../support/json.js';
import { assertDate, assertDuration, assertInteger, assertName, describe, storableDate } from '../support/validation.js';
import { resolvePolicy } from '../registry/task-policy.js';

/**
 * Checks a spawn and turns it into the row `spawn_task` stores: every refusal happens here,
 * before anything is written.
 */
export function toSpawnRow(
  name: unknown, params: unknown, options: SpawnOptions, definition: DurableTaskOptions | undefined, settings: ClientSettings,
): SpawnRow {
  assertName(name, 'task name');
  const queue = options.queue ?? definition?.queue ?? settings.queue;
  assertName(queue, 'queue');
  const policy = resolvePolicy(options, definition, settings.defaults);
  if (options.idempotencyKey !== undefined) assertName(options.idempotencyKey, 'idempotencyKey');
  if (options.delayMs !== undefined && options.runAt !== undefined) {
    throw new InvalidArgumentError('pass delayMs or runAt, not both');
  }
  if (options.delayMs !== undefined) assertDuration(options.delayMs, 'delayMs');
  if (options.runAt !== undefined) assertDate(options.runAt, 'runAt');
  if (options.priority !== undefined) assertInteger(options.priority, 'priority');
  if (options.concurrencyKey !== undefined) assertName(options.concurrencyKey, 'concurrencyKey');
  const max = settings.maxPayloadBytes;
  const rawHeaders = options.headers ?? {};
  if (typeof rawHeaders === 'object' && rawHeaders !== null) {
    for (const key of Object.keys(rawHeaders)) assertName(key, 'header key');
  }
  // Judged by their JSON: a boxed string or a toJSON must still give an object.
  const headers = toJson(rawHeaders, 'headers', max);
  if (typeof headers.value !== 'object' || headers.value === null || Array.isArray(headers.value)) {
    throw new InvalidArgumentError(`headers must be an object, got ${describe(options.headers)}`);
  }
  return {
    queue,
    name,
    // Params whose JSON is nothing (undefined, or a toJSON that returns it) are stored as null.
    params: toJson(params ?? null, `the params of task "${name}"`, max).text ?? 'null',
    headers: headers.text as string,
    maxAttempts: policy.maxAttempts,
    retry: JSON.stringify(policy.retry),
    cancellation: policy.cancellation ? JSON.stringify(policy.cancellation) : null,
    idempotencyKey: options.idempotencyKey ?? null,
    delayMs: options.delayMs ?? null,
    runAt: options.runAt ? storableDate(options.runAt) : null,
    priority: options.priority ?? 0,
    concurrencyKey: options.concurrencyKey ?? null,
  };
}
