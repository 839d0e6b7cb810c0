import type { DataSource } from 'typeorm';
import type { TaskPolicyOptions } from './task-options.interface.js';

export interface WorkerOptions {
  /** Queues this worker claims from. @default [the module's `queue`] */
  queues?: string[];
  /** Tasks executed at once in this process. @default 10 */
  concurrency?: number;
  /** How often an idle worker polls; NOTIFY wakes it sooner. @default 1000 */
  pollIntervalMs?: number;
  /** A claimed run's lease, renewed by checkpoints and heartbeats. @default 120000 */
  leaseMs?: number;
  /** How long `app.close()` waits for in-flight handlers. @default 30000 */
  shutdownTimeoutMs?: number;
  /** Recorded on the runs it claims. @default `hostname:pid` */
  workerId?: string;
  /** How long a task with no handler in this process is put back for. @default 15000 */
  unknownTaskDelayMs?: number;
}

export interface DurableModuleOptions {
  /** Connection string. @default process.env.DURABLE_DATABASE_URL */
  databaseUrl?: string;
  /** An existing TypeORM `DataSource` to reuse; durable never closes it. */
  dataSource?: DataSource;
  /** The Postgres schema of durable's tables. @default 'durable' */
  schema?: string;
  /** Default queue of spawn, events and the worker. @default 'default' */
  queue?: string;
  /** Apply durable's migrations at startup. @default true */
  migrationsRun?: boolean;
  /** `false` for a producer-only process. @default a worker with default options */
  worker?: WorkerOptions | false;
  /** Applied to every spawn, below `@DurableTask` and spawn options. */
  defaults?: TaskPolicyOptions;
  /** Largest params, payload, headers or step result, in bytes of JSON. @default 16777216 (16 MiB) */
  maxPayloadBytes?: number;
  /** Connections in durable's own pool (plus one for LISTEN). @default 10 */
  poolSize?: number;
  /**
   * A statement of durable's own pool with no answer after this long is abandoned, its
   * connection dropped, and the call rejects with `DatabaseUnavailableError`. @default 20000
   */
  queryTimeoutMs?: number;
}
