import type { DataSource } from 'typeorm';
import type { TaskPolicyOptions } from './task-options.interface.js';

export interface WorkerOptions {
  /** Queues this worker claims from. @default [the module's `queue`] */
  queues?: string[];
  /**
   * Handlers running at once in this process. A slot frees when its handler settles; the
   * outcome is written meanwhile (at most this many outcomes on their way). @default 10
   */
  concurrency?: number;
  /** How often an idle worker polls; NOTIFY wakes it sooner. @default 1000 */
  pollIntervalMs?: number;
  /** A claimed run's lease, renewed by checkpoints and heartbeats. @default 120000 */
  leaseMs?: number;
  /**
   * How long `app.close()` waits for in-flight handlers. Then each handler still running is
   * stopped (its next ctx call throws; nothing more of it is recorded): the run of one that is
   * not inside a step's function or a ctx call is put back at once without using an attempt;
   * the run of one inside a step keeps its lease until it expires, which counts as a failed
   * attempt (`LeaseExpired`), and that step runs again in the next attempt. @default 30000
   */
  shutdownTimeoutMs?: number;
  /**
   * Recorded on the runs it claims; must be unique per process (a worker puts back the runs
   * recorded under its id that it is not executing, after a claim whose answer was lost).
   * @default `hostname:pid:<8 random hex digits>`, new for each start
   */
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
  /**
   * Largest total of all checkpoints of one task, in bytes of JSON (every claim of a task reads
   * them all back, so it must stay far below Postgres's 1 GB and V8's ~512 MB string limits). A
   * step whose checkpoint would go over it fails its task with a `SerializationError` (no retry).
   * Sleeps, event payloads and emits count too, but are not refused. @default 268435456 (256 MiB)
   */
  maxCheckpointBytesPerTask?: number;
  /** Connections in durable's own pool (plus one for LISTEN). @default 10 */
  poolSize?: number;
  /**
   * How long one of durable's statements may take. On durable's own connections (`databaseUrl`)
   * PostgreSQL cancels a statement that runs longer (`statement_timeout`) or waits longer than
   * half of it for a lock held by another transaction (`lock_timeout`): it is rolled back and
   * the call rejects with `DatabaseTimeoutError` (nothing written, safe to retry). A statement
   * the server does not answer at all (a network partition) is given up on a margin later
   * (a tenth, 1 to 5 s): the call rejects with `OutcomeUnknownError`, as it may have committed.
   * With `dataSource`, only that client-side limit applies; the server-side timeouts are those
   * of your DataSource. Inside your transaction (`manager`), your settings apply. @default 20000
   */
  queryTimeoutMs?: number;
}
