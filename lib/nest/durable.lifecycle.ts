import {
  Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown,
  type OnModuleDestroy, type OnModuleInit,
} from '@nestjs/common';
import { DURABLE_CONNECTION, DURABLE_RESOLVED_OPTIONS } from '../durable.module-definition.js';
import { DurableClient } from '../engine/client/durable-client.js';
import type { DurableConnection } from '../engine/db/connection.js';
import type { ResolvedOptions } from '../engine/options.js';
import { HandlerRegistry } from '../engine/registry/handler-registry.js';
import { Worker } from '../engine/worker/worker.js';
import { DurableWorkerMonitor } from '../engine/worker/worker-monitor.js';
import { DurableExplorer } from './durable.explorer.js';

/**
 * Ties durable to the application's lifecycle: handlers are discovered at module init, the
 * worker starts once the application has bootstrapped, drains first when it closes, and the
 * connection closes last.
 */
@Injectable()
export class DurableLifecycle implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('Durable');
  private worker: Worker | undefined;

  constructor(
    @Inject(DURABLE_RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    @Inject(DURABLE_CONNECTION) private readonly connection: DurableConnection,
    @Inject(DurableClient) private readonly client: DurableClient,
    @Inject(DurableExplorer) private readonly explorer: DurableExplorer,
    @Inject(DurableWorkerMonitor) private readonly monitor: DurableWorkerMonitor,
  ) {}

  onModuleInit(): void {
    const registry = new HandlerRegistry(this.explorer.explore(), this.options.client.queue);
    this.client.registerDefinitions(registry.definitions());
    if (this.options.worker === false) return;
    const { store, notifier } = this.connection;
    this.worker = new Worker(store, registry, this.options.worker, this.logger, notifier, this.monitor);
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
