import { Global, Logger, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { DURABLE_CONNECTION, DURABLE_MODULE_OPTIONS, DURABLE_RESOLVED_OPTIONS, DurableConfigurableModule } from './durable.module-definition.js';
import { DurableClient } from './engine/client/durable-client.js';
import { DurableConnection } from './engine/db/connection.js';
import { resolveOptions, type ResolvedOptions } from './engine/options.js';
import { DurableWorkerMonitor } from './engine/worker/worker-monitor.js';
import { DurableExplorer } from './nest/durable.explorer.js';
import { DurableHealthIndicator } from './nest/durable-health.indicator.js';
import { DurableLifecycle } from './nest/durable.lifecycle.js';
import { DurableWorkerModule } from './nest/durable-worker.module.js';

/**
 * `DurableModule.forRoot(options)` / `forRootAsync({ imports, inject, useFactory })`.
 * Global: `DurableClient` and `DurableWorkerMonitor` can be injected anywhere. Being global, its
 * hooks run first on init and last on close (`DurableLifecycle`: handler discovery, then the
 * connection's close); the worker's run in `DurableWorkerModule`, last on init and first on close.
 */
@Global()
@Module({
  imports: [DiscoveryModule, DurableWorkerModule],
  providers: [
    // Every option is resolved and checked once, here, before anything connects.
    { provide: DURABLE_RESOLVED_OPTIONS, inject: [DURABLE_MODULE_OPTIONS], useFactory: resolveOptions },
    {
      provide: DURABLE_CONNECTION,
      inject: [DURABLE_RESOLVED_OPTIONS],
      useFactory: (options: ResolvedOptions) => DurableConnection.open(options.connection, new Logger('Durable')),
    },
    {
      provide: DurableClient,
      inject: [DURABLE_CONNECTION, DURABLE_RESOLVED_OPTIONS],
      useFactory: (connection: DurableConnection, options: ResolvedOptions) =>
        new DurableClient(connection.store, options.client, undefined, connection.notifier, new Logger('Durable')),
    },
    { provide: DurableWorkerMonitor, useFactory: () => new DurableWorkerMonitor(new Logger('Durable')) },
    DurableExplorer,
    DurableLifecycle,
    DurableHealthIndicator,
  ],
  // The last three are internal (their tokens are not exported by the package): DurableWorkerModule needs them.
  exports: [DurableClient, DurableWorkerMonitor, DurableHealthIndicator, DURABLE_RESOLVED_OPTIONS, DURABLE_CONNECTION, DurableLifecycle],
})
export class DurableModule extends DurableConfigurableModule {}
