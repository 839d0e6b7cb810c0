import { Global, Logger, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { DURABLE_CONNECTION, DURABLE_MODULE_OPTIONS, DURABLE_RESOLVED_OPTIONS, DurableConfigurableModule } from './durable.module-definition.js';
import { DurableClient } from './engine/client/durable-client.js';
import { DurableConnection } from './engine/db/connection.js';
import { resolveOptions, type ResolvedOptions } from './engine/options.js';
import { DurableWorkerMonitor } from './engine/worker/worker-monitor.js';
import { DurableExplorer } from './nest/durable.explorer.js';
import { DurableLifecycle } from './nest/durable.lifecycle.js';

/**
 * `DurableModule.forRoot(options)` / `forRootAsync({ imports, inject, useFactory })`.
 * Global: `DurableClient` and `DurableWorkerMonitor` can be injected anywhere.
 */
@Global()
@Module({
  imports: [DiscoveryModule],
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
      useFactory: (connection: DurableConnection, options: ResolvedOptions) => new DurableClient(connection.store, options.client),
    },
    { provide: DurableWorkerMonitor, useFactory: () => new DurableWorkerMonitor(new Logger('Durable')) },
    DurableExplorer,
    DurableLifecycle,
  ],
  exports: [DurableClient, DurableWorkerMonitor],
})
export class DurableModule extends DurableConfigurableModule {}
