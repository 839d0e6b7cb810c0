import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { DurableTaskOptions } from '../../interfaces/task-options.interface.js';
import type { FlowLimitRow } from '../sql/flow-statements.js';
import { CronSchedule } from '../schedules/cron.js';
import { toJson } from '../support/json.js';
import { assertDuration, assertPositiveInteger } from '../support/validation.js';

/** Checks `concurrency`, `rateLimit` and `schedule` of a `@DurableTask`; the message names the class. */
export function assertFlowOptions(options: DurableTaskOptions, className: string): void {
  const where = (field: string) => `@DurableTask ${field} on ${className}`;
  try {
    if (options.concurrency !== undefined) assertPositiveInteger(options.concurrency, where('concurrency'));
    if (options.rateLimit !== undefined) {
      if (typeof options.rateLimit !== 'object' || options.rateLimit === null) {
        throw new InvalidArgumentError(`${where('rateLimit')} must be { max, perMs }`);
      }
      assertPositiveInteger(options.rateLimit.max, where('rateLimit.max'));
      assertDuration(options.rateLimit.perMs, where('rateLimit.perMs'), true);
    }
    if (options.schedule !== undefined) {
      if (typeof options.schedule !== 'object' || options.schedule === null) {
        throw new InvalidArgumentError(`${where('schedule')} must be { cron, params?, timezone? }`);
      }
      new CronSchedule(options.schedule.cron, options.schedule.timezone ?? 'UTC');
      // Params that are not JSON are a SerializationError naming the class, at startup.
      toJson(options.schedule.params ?? null, where('schedule.params'), Infinity);
    }
  } catch (error) {
    if (error instanceof InvalidArgumentError && !error.message.includes(className)) {
      throw new InvalidArgumentError(`${where('options')}: ${error.message}`);
    }
    throw error;
  }
}

/** The `flow_limits` row of a registered task (both limits null: no limit, the row is removed). */
export function flowLimitOf(options: DurableTaskOptions, queue: string): FlowLimitRow {
  return {
    queue, name: options.name,
    concurrency: options.concurrency ?? null,
    rateMax: options.rateLimit?.max ?? null,
    ratePerMs: options.rateLimit?.perMs ?? null,
  };
}
