import { Inject, Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { getTaskOptions } from '../engine/task-definition.js';
import type { DurableTaskHandler } from '../interfaces/task-context.interface.js';
import type { DurableTaskOptions } from '../interfaces/task-options.interface.js';

export interface DiscoveredTask {
  options: DurableTaskOptions;
  queue: string;
  handler: DurableTaskHandler;
  className: string;
}

/** Finds the `@DurableTask` providers of the application and checks them. */
@Injectable()
export class DurableExplorer {
  constructor(@Inject(DiscoveryService) private readonly discovery: DiscoveryService) {}

  explore(defaultQueue: string): DiscoveredTask[] {
    const found: DiscoveredTask[] = [];
    for (const wrapper of this.discovery.getProviders()) {
      const metatype = wrapper.metatype;
      if (typeof metatype !== 'function') continue;
      const options = getTaskOptions(metatype);
      if (!options) continue;
      const className = metatype.name;
      if (!wrapper.isDependencyTreeStatic()) {
        throw new InvalidArgumentError(`${className}: a @DurableTask handler must be a singleton provider, not request- or transient-scoped`);
      }
      const handler = wrapper.instance as DurableTaskHandler | undefined;
      if (typeof handler?.run !== 'function') {
        throw new InvalidArgumentError(`${className} is decorated with @DurableTask but has no run(params, ctx) method`);
      }
      const queue = options.queue ?? defaultQueue;
      const twin = found.find((task) => task.options.name === options.name && task.queue === queue);
      if (twin) {
        throw new InvalidArgumentError(`${className} and ${twin.className} are both @DurableTask "${options.name}" on queue "${queue}"; task names must be unique per queue`);
      }
      found.push({ options, queue, handler, className });
    }
    return found;
  }
}
