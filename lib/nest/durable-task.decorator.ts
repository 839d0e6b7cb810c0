import { Injectable } from '@nestjs/common';
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
    Injectable()(target);
    Reflect.defineMetadata(DURABLE_TASK_METADATA, { ...options }, target);
  };
}
