import type { TaskPolicyOptions } from '../../interfaces/task-options.interface.js';
import { assertCancellationPolicy, assertPositiveInteger, assertRetryStrategy } from '../support/validation.js';

const BUILT_IN_POLICY = {
  maxAttempts: 5,
  retry: { kind: 'exponential', baseDelayMs: 1000, factor: 2, maxDelayMs: 300_000 },
} as const satisfies TaskPolicyOptions;

/** Spawn options over `@DurableTask` options over module defaults over the built-in ones, checked. */
export function resolvePolicy(spawn: TaskPolicyOptions, task: TaskPolicyOptions | undefined, defaults: TaskPolicyOptions) {
  const maxAttempts = spawn.maxAttempts ?? task?.maxAttempts ?? defaults.maxAttempts ?? BUILT_IN_POLICY.maxAttempts;
  const retry = spawn.retry ?? task?.retry ?? defaults.retry ?? BUILT_IN_POLICY.retry;
  const cancellation = spawn.cancellation ?? task?.cancellation ?? defaults.cancellation;
  assertPositiveInteger(maxAttempts, 'maxAttempts');
  assertRetryStrategy(retry, 'retry');
  if (cancellation !== undefined) assertCancellationPolicy(cancellation, 'cancellation');
  return { maxAttempts, retry, cancellation };
}
