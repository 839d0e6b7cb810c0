import {
  Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown,
  type OnModuleDestroy, type OnModuleInit,
} from '@nestjs/common';
import { DURABLE_CONNECTION, DURABLE_MODULE_OPTIONS } from '../durable.module-definition.js';
import { DurableClient, settingsOf } from '../engine/client.js';
import type { DurableConnection } from '../engine/connection.js';
import { Worker, type HandlerRegistry } from '../engine/worker.js';
import { resolveWorkerOptions } from '../engine/worker-options.js';
import type { DurableModuleOptions } from '../interfaces/durable-options.interface.js';
import { DurableExplorer } from './durable.explorer.js';

/**
 * Ties durable to the application's lifecycle: handlers are discovered at module init, the
 * worker starts once the application has bootstrapped, drains first when it closes, and the
 * connection closes last.
 */
@Injectable()
export class DurableHost implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('Durable');
  private worker: Worker | undefined;

  constructor(
    @Inject(DURABLE_MODULE_OPTIONS) private readonly options: DurableModuleOptions,
    @Inject(DURABLE_CONNECTION) private readonly connection: DurableConnection,
    @Inject(DurableClient) private readonly client: DurableClient,
    @Inject(DurableExplorer) private readonly explorer: DurableExplorer,
  ) {}

  onModuleInit(): void {
    const settings = settingsOf(this.options);
    const tasks = this.explorer.explore(settings.queue);
    this.client.registerDefinitions(tasks.map((task) => task.options));
    if (this.options.worker === false) return;

    const workerOptions = resolveWorkerOptions(this.options.worker ?? {}, settings.queue, settings.maxPayloadBytes);
    const handlers: HandlerRegistry = new Map();
    for (const task of tasks) {
      if (!workerOptions.queues.includes(task.queue)) {
        this.logger.warn(`${task.className} handles "${task.options.name}" on queue "${task.queue}", which this worker does not poll; add it to worker.queues`);
      }
      if (!handlers.has(task.queue)) handlers.set(task.queue, new Map());
      handlers.get(task.queue)!.set(task.options.name, task.handler);
    }
    this.worker = new Worker(this.connection.store, handlers, workerOptions, this.logger, this.connection.notifier);
  }

  onApplicationBootstrap(): void {
    this.worker?.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.worker?.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.connection.close();
  }
}
