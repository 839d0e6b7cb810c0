import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { DurableTaskHandler } from '../../interfaces/task-context.interface.js';
import type { DurableTaskOptions } from '../../interfaces/task-options.interface.js';
import { assertFlowOptions } from '../flow/flow-options.js';

/** A handler as found by whoever discovers them (Nest's explorer, or a plain script). */
export interface TaskRegistration {
  options: DurableTaskOptions;
  /** The object whose `run(params, ctx)` handles the task. */
  handler: unknown;
  /** For error messages and logs. */
  className: string;
}

interface RegisteredTask extends TaskRegistration {
  queue: string;
  handler: DurableTaskHandler;
}

/**
 * The tasks this process can run, by queue and then name, checked once: every handler has a
 * `run` method and no two handle the same name on the same queue.
 */
export class HandlerRegistry {
  private readonly tasks: RegisteredTask[] = [];
  private readonly byQueue = new Map<string, Map<string, DurableTaskHandler>>();

  constructor(registrations: Iterable<TaskRegistration>, defaultQueue: string) {
    for (const { options, handler, className } of registrations) {
      if (typeof (handler as DurableTaskHandler | undefined)?.run !== 'function') {
        throw new InvalidArgumentError(`${className} is decorated with @DurableTask but has no run(params, ctx) method`);
      }
      assertFlowOptions(options, className);
      const queue = options.queue ?? defaultQueue;
      const twin = this.tasks.find((task) => task.options.name === options.name && task.queue === queue);
      if (twin) {
        throw new InvalidArgumentError(`${className} and ${twin.className} are both @DurableTask "${options.name}" on queue "${queue}"; task names must be unique per queue`);
      }
      this.tasks.push({ options, handler: handler as DurableTaskHandler, className, queue });
      if (!this.byQueue.has(queue)) this.byQueue.set(queue, new Map());
      this.byQueue.get(queue)!.set(options.name, handler as DurableTaskHandler);
    }
  }

  get(queue: string, taskName: string): DurableTaskHandler | undefined {
    return this.byQueue.get(queue)?.get(taskName);
  }

  /** The `@DurableTask` options of every handler, for spawns by name. */
  definitions(): DurableTaskOptions[] {
    return this.tasks.map((task) => task.options);
  }

  /** Each handler's options and queue (for the limits and schedules it declares). */
  registered(): { options: DurableTaskOptions; queue: string }[] {
    return this.tasks.map(({ options, queue }) => ({ options, queue }));
  }

  /** Warnings for handlers whose queue the given queues leave out: nothing would run them here. */
  unpolled(queues: string[]): string[] {
    return this.tasks
      .filter((task) => !queues.includes(task.queue))
      .map((task) => `${task.className} handles "${task.options.name}" on queue "${task.queue}", which this worker does not poll; add it to worker.queues`);
  }
}
