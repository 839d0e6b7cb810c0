import { Global, Logger, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { DURABLE_CONNECTION, DURABLE_MODULE_OPTIONS, DurableConfigurableModule } from './durable.module-definition.js';
import { DurableClient, settingsOf } from './engine/client.js';
import { DurableConnection } from './engine/connection.js';
import { resolveWorkerOptions } from './engine/worker-options.js';
import type { DurableModuleOptions } from './interfaces/durable-options.interface.js';
import { DurableExplorer } from './nest/durable.explorer.js';
import { DurableHost } from './nest/durable.host.js';

/**
 * `DurableModule.forRoot(options)` / `forRootAsync({ imports, inject, useFactory })`.
 * Global: `DurableClient` can be injected anywhere.
 */
@Global()
@Module({
  imports: [DiscoveryModule],
  providers: [
    {
      provide: DURABLE_CONNECTION,
      inject: [DURABLE_MODULE_OPTIONS],
      useFactory: (options: DurableModuleOptions) => {
        // Every option is checked before anything connects.
        const settings = settingsOf(options);
        if (options.worker) resolveWorkerOptions(options.worker, settings.queue, settings.maxPayloadBytes);
        return DurableConnection.open(options, new Logger('Durable'));
      },
    },
    {
      provide: DurableClient,
      inject: [DURABLE_CONNECTION, DURABLE_MODULE_OPTIONS],
      useFactory: (connection: DurableConnection, options: DurableModuleOptions) =>
        new DurableClient(connection.store, settingsOf(options)),
    },
    DurableExplorer,
    DurableHost,
  ],
  exports: [DurableClient],
})
export class DurableModule extends DurableConfigurableModule {}
