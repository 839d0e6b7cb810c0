import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DURABLE_CONNECTION, DURABLE_RESOLVED_OPTIONS } from '../durable.module-definition.js';
import { DurableClient } from '../engine/client/durable-client.js';
import type { DurableConnection } from '../engine/db/connection.js';
import type { ResolvedOptions } from '../engine/options.js';
import { HandlerRegistry } from '../engine/registry/handler-registry.js';
import { DurableExplorer } from './durable.explorer.js';

/**
 * The global DurableModule's part of the application's lifecycle. Its hooks run first on init
 * and last on close (Nest orders global modules so): handlers are discovered and their
 * definitions registered before any of the app's own `onModuleInit` (which may then spawn by
 * name), and the connection closes after every other shutdown hook. The worker has a
 * lifecycle of its own, the other way round (`durable-worker.module.ts`).
 */
@Injectable()
export class DurableLifecycle implements OnModuleInit, OnApplicationShutdown {
  private handlers: HandlerRegistry | undefined;

  constructor(
    @Inject(DURABLE_RESOLVED_OPTIONS) private readonly options: ResolvedOptions,
    @Inject(DURABLE_CONNECTION) private readonly connection: DurableConnection,
    @Inject(DurableClient) private readonly client: DurableClient,
    @Inject(DurableExplorer) private readonly explorer: DurableExplorer,
  ) {}

  /** The handlers found at module init. */
  get registry(): HandlerRegistry {
    if (!this.handlers) throw new Error('durable: the handler registry is read before DurableModule was initialized');
    return this.handlers;
  }

  async onModuleInit(): Promise<void> {
    await closeOnFailure(this.connection, () => {
      this.handlers = new HandlerRegistry(this.explorer.explore(), this.options.client.queue);
      this.client.registerDefinitions(this.handlers.definitions());
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close(); // its watchers (the connection is not the client's to close)
    await this.connection.close();
  }
}

/**
 * Runs `fn`; if it throws, closes the connection before rethrowing. Nest runs no shutdown hook
 * when start-up fails (and `createApplicationContext` returns no app to close), so whatever
 * durable refuses after connecting must not leave the connection open.
 */
export async function closeOnFailure<T>(connection: DurableConnection, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    await connection.close().catch(() => undefined);
    throw error;
  }
}
