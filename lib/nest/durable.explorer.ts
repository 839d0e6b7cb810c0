import { Inject, Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { getTaskOptions } from '../engine/registry/task-metadata.js';
import type { TaskRegistration } from '../engine/registry/handler-registry.js';

/** Finds the application's `@DurableTask` providers; the engine's `HandlerRegistry` checks them. */
@Injectable()
export class DurableExplorer {
  constructor(@Inject(DiscoveryService) private readonly discovery: DiscoveryService) {}

  explore(): TaskRegistration[] {
    const found: TaskRegistration[] = [];
    for (const wrapper of this.discovery.getProviders()) {
      const metatype = wrapper.metatype;
      if (typeof metatype !== 'function') continue;
      const options = getTaskOptions(metatype);
      if (!options) continue;
      // Nest counts a transient provider as static, but its `instance` is a prototype never constructed.
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
        throw new InvalidArgumentError(`${metatype.name}: a @DurableTask handler must be a singleton provider, not request- or transient-scoped`);
      }
      found.push({ options, handler: wrapper.instance, className: metatype.name });
    }
    return found;
  }
}
