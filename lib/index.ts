export * from './durable.module.js';
export * from './nest/durable-task.decorator.js';
export {
  DurableHealthIndicator, DURABLE_HEALTH_OPTIONS, type DurableHealthOptions, type DurableHealthData, type DurableHealthResult,
} from './nest/durable-health.indicator.js';
export { DurableClient, type DurableClientOptions } from './engine/client/durable-client.js';
export {
  DurableWorkerMonitor, type WorkerStatus, type WorkerState, type WorkerObserver, type ObservedRun,
} from './engine/worker/worker-monitor.js';
export type { TaskHandlerClass } from './engine/registry/task-metadata.js';
export type { DurableLogger } from './engine/support/logger.js';
export * from './interfaces/durable-options.interface.js';
export * from './interfaces/task-context.interface.js';
export * from './interfaces/task-options.interface.js';
export * from './interfaces/task-snapshot.interface.js';
export * from './interfaces/task-detail.interface.js';
export * from './interfaces/schedule.interface.js';
export * from './errors/index.js';
export { durableMigrations, createDurableMigrations, type DurableMigrationClass } from './engine/sql/migrations/index.js';
export * from './entities/durable-entities.js';
