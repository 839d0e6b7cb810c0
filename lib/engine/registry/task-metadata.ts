import 'reflect-metadata';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { DurableTaskHandler } from '../../interfaces/task-context.interface.js';
import type { DurableTaskOptions } from '../../interfaces/task-options.interface.js';

/** A class whose instances handle a task. */
export type TaskHandlerClass<P = unknown, O = unknown> = new (...args: never[]) => DurableTaskHandler<P, O>;

export const DURABLE_TASK_METADATA = 'nestjs-durable:task';

/** The options `@DurableTask` stored on a class, or undefined. */
export function getTaskOptions(target: object): DurableTaskOptions | undefined {
  return Reflect.getMetadata(DURABLE_TASK_METADATA, target) as DurableTaskOptions | undefined;
}

export function requireTaskOptions(target: TaskHandlerClass): DurableTaskOptions {
  const options = getTaskOptions(target);
  if (!options) {
    throw new InvalidArgumentError(`${target.name || 'the class'} is not decorated with @DurableTask; pass a decorated class or a task name`);
  }
  return options;
}
