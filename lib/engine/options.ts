import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { DataSource } from 'typeorm';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import type { DurableModuleOptions } from '../interfaces/durable-options.interface.js';
import type { TaskPolicyOptions } from '../interfaces/task-options.interface.js';
import { resolvePolicy } from './registry/task-policy.js';
import { assertSchemaName } from './sql/schema-name.js';
import { assertDuration, assertName, assertPositiveInteger } from './support/validation.js';

/** What the client needs besides the database. */
export interface ClientSettings {
  /** The default queue. */
  queue: string;
  defaults: TaskPolicyOptions;
  maxPayloadBytes: number;
}

export interface ConnectionSettings {
  databaseUrl?: string;
  dataSource?: DataSource;
  schema: string;
  migrationsRun: boolean;
  poolSize: number;
  queryTimeoutMs: number;
}

export interface WorkerSettings {
  queues: string[];
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  shutdownTimeoutMs: number;
  workerId: string;
  unknownTaskDelayMs: number;
  maxPayloadBytes: number;
  /** The cap on the bytes of all checkpoints of one task (the module's `maxCheckpointBytesPerTask`). */
  maxCheckpointBytesPerTask: number;
}

/** Every option with its default filled in and checked: resolved once, before anything connects. */
export interface ResolvedOptions {
  client: ClientSettings;
  connection: ConnectionSettings;
  /** `false` for a producer-only process. */
  worker: WorkerSettings | false;
}

/** Fills in the documented defaults and refuses bad values, naming the option. */
export function resolveOptions(options: DurableModuleOptions): ResolvedOptions {
  const client = resolveClientSettings(options);
  const maxCheckpointBytesPerTask = options.maxCheckpointBytesPerTask ?? 256 * 1024 * 1024;
  assertPositiveInteger(maxCheckpointBytesPerTask, 'maxCheckpointBytesPerTask');
  const worker = options.worker === false ? false : resolveWorkerSettings(options.worker ?? {}, client, maxCheckpointBytesPerTask);
  const connection: ConnectionSettings = {
    databaseUrl: options.databaseUrl,
    dataSource: options.dataSource,
    schema: options.schema ?? 'durable',
    migrationsRun: options.migrationsRun ?? true,
    poolSize: options.poolSize ?? 10,
    queryTimeoutMs: options.queryTimeoutMs ?? 20_000,
  };
  assertSchemaName(connection.schema);
  assertPositiveInteger(connection.poolSize, 'poolSize');
  assertDuration(connection.queryTimeoutMs, 'queryTimeoutMs', true);
  return { client, connection, worker };
}

function resolveClientSettings(options: DurableModuleOptions): ClientSettings {
  const settings = {
    queue: options.queue ?? 'default',
    defaults: options.defaults ?? {},
    maxPayloadBytes: options.maxPayloadBytes ?? 16 * 1024 * 1024,
  };
  assertName(settings.queue, 'queue');
  assertPositiveInteger(settings.maxPayloadBytes, 'maxPayloadBytes');
  resolvePolicy({}, undefined, settings.defaults);
  return settings;
}

function resolveWorkerSettings(
  options: NonNullable<DurableModuleOptions['worker']> & object,
  client: ClientSettings,
  maxCheckpointBytesPerTask: number,
): WorkerSettings {
  const resolved: WorkerSettings = {
    queues: options.queues ?? [client.queue],
    concurrency: options.concurrency ?? 10,
    pollIntervalMs: options.pollIntervalMs ?? 1000,
    leaseMs: options.leaseMs ?? 120_000,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 30_000,
    // The random part tells processes apart where hostname:pid does not (containers run as pid 1).
    workerId: options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
    unknownTaskDelayMs: options.unknownTaskDelayMs ?? 15_000,
    maxPayloadBytes: client.maxPayloadBytes,
    maxCheckpointBytesPerTask,
  };
  if (!Array.isArray(resolved.queues) || resolved.queues.length === 0) {
    throw new InvalidArgumentError('worker.queues must be a non-empty array of queue names');
  }
  resolved.queues.forEach((name) => assertName(name, 'worker.queues[]'));
  assertPositiveInteger(resolved.concurrency, 'worker.concurrency');
  assertDuration(resolved.pollIntervalMs, 'worker.pollIntervalMs', true);
  assertDuration(resolved.leaseMs, 'worker.leaseMs', true);
  assertDuration(resolved.shutdownTimeoutMs, 'worker.shutdownTimeoutMs');
  assertDuration(resolved.unknownTaskDelayMs, 'worker.unknownTaskDelayMs');
  assertName(resolved.workerId, 'worker.workerId');
  return resolved;
}
