import {
  Inject, Injectable, Logger, Module, type OnApplicationBootstrap, type OnModuleDestroy, type OnModuleInit,
} from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { DURABLE_CONNECTION, DURABLE_RESOLVED_OPTIONS } from '../durable.module-definition.js';
import { DurableClient } from '../engine/client/durable-client.js';
import type { DurableConnection } from '../engine/db/connection.js';
import type { ResolvedOptions } from '../engine/options.js';
import { syncDeclarations } from '../engine/flow/declarations.js';
import { Worker } from '../engine/worker/worker.js';
import { DurableWorkerMonitor } from '../engine/worker/worker-monitor.js';
import { closeOnFailure, DurableLifecycle } from './durable.lifecycle.js';

/**
 * The worker's lifecycle: created at module init, started once everything else has
 * bootstrapped, and drained (stop claiming, wait up to `shutdownTimeoutMs` for running
 * handlers) when the application closes, BEFORE any of the app's own providers is destroyed:
 * a draining handler may still use them.
 *
 * Nest runs init and bootstrap hooks by module `distance`, highest first, and destroy and
 * shutdown hooks lowest first; a global module (DurableModule) has the highest. This provider's
 * module gets a distance below every other (-1), set while Nest creates the instances, which
 * is before `init()` sorts the modules for its hooks.
 */
@Injectable()
export class DurableWorkerLifecycle implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Durable');
  private worker: Worker | undefined;

  constructor(
    @Inject(ModulesContainer) modules: ModulesContainer,
    @Inject(DURABLE_RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    @Inject(DURABLE_CONNECTION) private readonly connection: DurableConnection,
    @Inject(DurableLifecycle) private readonly durable: DurableLifecycle,
    @Inject(DurableWorkerMonitor) private readonly monitor: DurableWorkerMonitor,
    @Inject(DurableClient) private readonly client: DurableClient,
  ) {
    for (const module of modules.values()) {
      if (module.metatype === DurableWorkerModule) module.distance = -1;
    }
  }

  async onModuleInit(): Promise<void> {
    const worker = this.options.worker;
    if (worker === false) return;
    await closeOnFailure(this.connection, () => {
      const { store, notifier } = this.connection;
      this.worker = new Worker(store, this.durable.registry, worker, this.logger, notifier, this.monitor,
        (task, params, options) => this.client.spawnRow(task, params, options),
        () => syncDeclarations(store, this.durable.registry, this.client.schedules));
    });
  }

  onApplicationBootstrap(): void {
    this.worker?.start();
  }

  async onModuleDestroy(): Promise<void> {
    // The notifier stays up until the connection closes: cancellations still reach draining handlers.
    await this.worker?.stop();
  }
}

/** Internal, imported by DurableModule; not global, so that its hooks can be ordered apart. */
@Module({ providers: [DurableWorkerLifecycle] })
export class DurableWorkerModule {}
