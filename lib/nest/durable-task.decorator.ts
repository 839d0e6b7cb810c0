import { Injectable, type ScopeOptions } from '@nestjs/common';
import { SCOPE_OPTIONS_METADATA } from '@nestjs/common/constants.js';
import { DURABLE_TASK_METADATA } from '../engine/registry/task-metadata.js';
import { assertName } from '../engine/support/validation.js';
import type { DurableTaskOptions } from '../interfaces/task-options.interface.js';

/**
 * Marks a provider class as the handler of a task. It only records metadata; the module finds
 * the class among the application's providers, so it gets constructor injection as usual.
 */
export function DurableTask(options: DurableTaskOptions): ClassDecorator {
  return (target) => {
    assertName(options?.name, `@DurableTask name on ${target.name}`);
    if (options.queue !== undefined) assertName(options.queue, `@DurableTask queue on ${target.name}`);
    // Keeps the scope an @Injectable({ scope }) below it set, so that the explorer sees and refuses it.
    Injectable(Reflect.getMetadata(SCOPE_OPTIONS_METADATA, target) as ScopeOptions | undefined)(target);
    Reflect.defineMetadata(DURABLE_TASK_METADATA, { ...options }, target);
  };
}
