import type { CancellationPolicy, RetryStrategy, TaskPolicyOptions } from '../../interfaces/task-options.interface.js';
import { assertCancellationPolicy, assertPositiveInteger, assertRetryStrategy } from '../support/validation.js';

const BUILT_IN_POLICY = {
  maxAttempts: 5,
  retry: { kind: 'exponential', baseDelayMs: 1000, factor: 2, maxDelayMs: 300_000 },
} as const satisfies TaskPolicyOptions;

/**
 * Spawn options over `@DurableTask` options over module defaults over the built-in ones, checked.
 * The retry strategy and cancellation policy come back as plain objects rebuilt from the checked
 * fields (each read once): what is stored is exactly what was checked, whatever a `toJSON`, a
 * getter or an extra field of the caller's object would have made of it.
 */
export function resolvePolicy(spawn: TaskPolicyOptions, task: TaskPolicyOptions | undefined, defaults: TaskPolicyOptions) {
  const maxAttempts = spawn.maxAttempts ?? task?.maxAttempts ?? defaults.maxAttempts ?? BUILT_IN_POLICY.maxAttempts;
  const retry = rebuildRetry(spawn.retry ?? task?.retry ?? defaults.retry ?? BUILT_IN_POLICY.retry);
  const given = spawn.cancellation ?? task?.cancellation ?? defaults.cancellation;
  assertPositiveInteger(maxAttempts, 'maxAttempts');
  assertRetryStrategy(retry, 'retry');
  let cancellation: CancellationPolicy | undefined;
  if (given !== undefined) {
    const rebuilt = rebuildCancellation(given);
    assertCancellationPolicy(rebuilt, 'cancellation');
    cancellation = rebuilt;
  }
  return { maxAttempts, retry, cancellation };
}

/** The fields of its kind, read once; anything without a known kind is passed on to be refused. */
function rebuildRetry(value: unknown): unknown {
  if (!isObject(value)) return value;
  const kind = value.kind;
  switch (kind) {
    case 'none':
      return { kind } satisfies RetryStrategy;
    case 'fixed':
      return { kind, delayMs: value.delayMs };
    case 'exponential':
      return defined({ kind, baseDelayMs: value.baseDelayMs, factor: value.factor, maxDelayMs: value.maxDelayMs });
    default:
      return value;
  }
}

function rebuildCancellation(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const policy = value as Record<string, unknown>;
  return defined({ maxDelayMs: policy.maxDelayMs, maxDurationMs: policy.maxDurationMs } satisfies Record<keyof CancellationPolicy, unknown>);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' && value !== null) || typeof value === 'function';
}

/** Without its undefined fields (an optional field left out is stored as absent, as before). */
function defined<T extends Record<string, unknown>>(fields: T): T {
  return Object.fromEntries(Object.entries(fields).filter(([, field]) => field !== undefined)) as T;
}
