import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { TaskCancelledError } from '../errors/task-cancelled.error.js';
import { TaskFailedError } from '../errors/task-failed.error.js';
import { TaskNotFoundError } from '../errors/task-not-found.error.js';
import { TimeoutError } from '../errors/timeout.error.js';
import type {
  DurableTaskOptions, EmitOptions, SpawnOptions, SpawnResult, TaskPolicyOptions,
} from '../interfaces/task-options.interface.js';
import type {
  AwaitResultOptions, CleanupOptions, ListTasksOptions, TaskError, TaskSnapshot, TaskState,
} from '../interfaces/task-snapshot.interface.js';
import { delay } from './abortable-delay.js';
import { Batcher } from './batcher.js';
import { isConnectionError } from './database-errors.js';
import { DurableConnection, type ConnectionOptions } from './connection.js';
import { toJson } from './json.js';
import { consoleLogger, type DurableLogger } from './logger.js';
import type { Row, Store } from './store.js';
import { requireTaskOptions, type TaskHandlerClass } from './task-definition.js';
import {
  assertCancellationPolicy, assertDate, assertDuration, assertName, assertPositiveInteger,
  assertRetryStrategy, describe, storableDate,
} from './validation.js';

export interface ClientSettings {
  /** The default queue. */
  queue: string;
  defaults: TaskPolicyOptions;
  maxPayloadBytes: number;
}

export interface DurableClientOptions extends ConnectionOptions, Partial<ClientSettings> {
  logger?: DurableLogger;
}

const BUILT_IN_POLICY = {
  maxAttempts: 5,
  retry: { kind: 'exponential', baseDelayMs: 1000, factor: 2, maxDelayMs: 300_000 },
} as const satisfies TaskPolicyOptions;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STATES: readonly TaskState[] = ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'];

/**
 * Spawns tasks, emits events and reads or manages tasks. Injected by `DurableModule`; outside
 * Nest, `DurableClient.connect(options)` opens one of its own (close it with `close()`).
 */
export class DurableClient {
  /** `@DurableTask` options of the handlers known in this process, for spawns by name. */
  private readonly definitions: DurableTaskOptions[] = [];
  private readonly spawns: Batcher<SpawnArgs, Row>;

  constructor(
    private readonly store: Store,
    private readonly settings: ClientSettings,
    private readonly connection?: DurableConnection,
  ) {
    this.spawns = new Batcher((batch) => this.spawnBatch(batch), { maxBatch: 500, maxInFlight: 4 });
  }

  static async connect(options: DurableClientOptions = {}): Promise<DurableClient> {
    const settings = settingsOf(options); // refuses bad options before anything connects
    const connection = await DurableConnection.open(options, options.logger ?? consoleLogger);
    return new DurableClient(connection.store, settings, connection);
  }

  /** Closes the connection `connect` opened; a no-op for the client Nest injects. */
  async close(): Promise<void> {
    await this.connection?.close();
  }

  /** @internal Called by the module with the handlers it discovered. */
  registerDefinitions(definitions: DurableTaskOptions[]): void {
    this.definitions.push(...definitions);
  }

  spawn<P, O>(task: TaskHandlerClass<P, O>, params: P, options?: SpawnOptions): Promise<SpawnResult>;
  spawn(task: string, params?: unknown, options?: SpawnOptions): Promise<SpawnResult>;
  async spawn(task: string | TaskHandlerClass, params?: unknown, options: SpawnOptions = {}): Promise<SpawnResult> {
    const definition = typeof task === 'string' ? this.definitionNamed(task, options.queue) : requireTaskOptions(task);
    const name = typeof task === 'string' ? task : definition?.name;
    assertName(name, 'task name');
    const queue = options.queue ?? definition?.queue ?? this.settings.queue;
    assertName(queue, 'queue');
    const policy = resolvePolicy(options, definition, this.settings.defaults);
    if (options.idempotencyKey !== undefined) assertName(options.idempotencyKey, 'idempotencyKey');
    if (options.delayMs !== undefined && options.runAt !== undefined) {
      throw new InvalidArgumentError('pass delayMs or runAt, not both');
    }
    if (options.delayMs !== undefined) assertDuration(options.delayMs, 'delayMs');
    if (options.runAt !== undefined) assertDate(options.runAt, 'runAt');
    const max = this.settings.maxPayloadBytes;
    const rawHeaders = options.headers ?? {};
    if (typeof rawHeaders === 'object' && rawHeaders !== null) {
      for (const key of Object.keys(rawHeaders)) assertName(key, 'header key');
    }
    // Judged by their JSON: a boxed string or a toJSON must still give an object.
    const headers = toJson(rawHeaders, 'headers', max);
    if (typeof headers.value !== 'object' || headers.value === null || Array.isArray(headers.value)) {
      throw new InvalidArgumentError(`headers must be an object, got ${describe(options.headers)}`);
    }
    // Params whose JSON is nothing (undefined, or a toJSON that returns it) are stored as null.
    const paramsText = toJson(params ?? null, `the params of task "${name}"`, max).text ?? 'null';
    const args: SpawnArgs = [
      queue, name, paramsText, headers.text as string, policy.maxAttempts, JSON.stringify(policy.retry),
      policy.cancellation ? JSON.stringify(policy.cancellation) : null,
      options.idempotencyKey ?? null, options.delayMs ?? null, options.runAt ? storableDate(options.runAt) : null,
    ];
    // In the caller's transaction a spawn goes alone; otherwise it shares a commit with the
    // spawns issued at the same time.
    const row = options.manager
      ? await this.store.one(this.store.sql.spawn, args, options.manager)
      : await this.spawns.add(args);
    return { taskId: row.task_id as string, runId: row.run_id as string, attempt: row.attempt as number, created: row.created as boolean };
  }

  /** Emits an event: the first emit of a name on a queue wins, later ones change nothing. */
  async emitEvent(eventName: string, payload?: unknown, options: EmitOptions = {}): Promise<void> {
    assertName(eventName, 'event name');
    const queue = options.queue ?? this.settings.queue;
    assertName(queue, 'queue');
    const json = toJson(payload ?? null, `the payload of event "${eventName}"`, this.settings.maxPayloadBytes);
    await this.store.query(this.store.sql.emit, [queue, eventName, json.text ?? 'null'], options.manager);
  }

  async getTask<P = unknown, O = unknown>(taskId: string): Promise<TaskSnapshot<P, O> | null> {
    assertTaskId(taskId);
    const [row] = await this.store.query(this.store.sql.getTask, [taskId]);
    return row ? toSnapshot<P, O>(row) : null;
  }

  /** Resolves with the task's result once it completes; rejects if it fails or is cancelled. */
  async awaitResult<O = unknown>(taskId: string, options: AwaitResultOptions = {}): Promise<O> {
    assertTaskId(taskId);
    if (options.timeoutMs !== undefined) assertDuration(options.timeoutMs, 'timeoutMs');
    const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    for (let pauseMs = 10; ; pauseMs = Math.min(pauseMs * 2, 250)) {
      const task = await this.getTask<unknown, O>(taskId);
      if (!task) throw new TaskNotFoundError(taskId);
      if (task.state === 'completed') return task.result as O;
      if (task.state === 'failed') throw new TaskFailedError(taskId, task.error ?? { name: 'Error', message: 'unknown' });
      if (task.state === 'cancelled') throw new TaskCancelledError(taskId, task.error?.message);
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`task ${taskId} did not finish within ${options.timeoutMs} ms (it is ${task.state})`);
      await delay(Math.min(pauseMs, left));
    }
  }

  /** Tasks newest first; pass the last `taskId` of a page as `cursor` for the next. */
  async listTasks(options: ListTasksOptions = {}): Promise<TaskSnapshot[]> {
    if (options.queue !== undefined) assertName(options.queue, 'queue');
    if (options.name !== undefined) assertName(options.name, 'task name');
    if (options.state !== undefined && !STATES.includes(options.state)) {
      throw new InvalidArgumentError(`state must be one of ${STATES.join(', ')}, got ${describe(options.state)}`);
    }
    if (options.cursor !== undefined) assertTaskId(options.cursor);
    const limit = options.limit ?? 50;
    assertPositiveInteger(limit, 'limit');
    // A page after a task that is gone cannot be placed: say so rather than return nothing.
    if (options.cursor !== undefined && (await this.store.query(this.store.sql.taskExists, [options.cursor])).length === 0) {
      throw new TaskNotFoundError(options.cursor);
    }
    const rows = await this.store.query(this.store.sql.listTasks, [
      options.queue ?? null, options.state ?? null, options.name ?? null, options.cursor ?? null, Math.min(limit, 1000),
    ]);
    return rows.map((row) => toSnapshot(row));
  }

  /** Cancels a task that has not finished; running code stops at its next context call. */
  async cancel(taskId: string): Promise<void> {
    assertTaskId(taskId);
    const row = await this.store.one(this.store.sql.cancel, [taskId]);
    if (row.outcome === 'not_found') throw new TaskNotFoundError(taskId);
  }

  /** Gives a failed or cancelled task a new attempt; its checkpoints are kept. */
  async retry(taskId: string): Promise<void> {
    assertTaskId(taskId);
    const row = await this.store.one(this.store.sql.retry, [taskId]);
    if (row.outcome === 'not_found') throw new TaskNotFoundError(taskId);
    if (row.outcome !== 'failed' && row.outcome !== 'cancelled') {
      throw new InvalidArgumentError(`task ${taskId} is ${row.outcome as string}; only failed or cancelled tasks can be retried`);
    }
  }

  async createQueue(name: string): Promise<void> {
    assertName(name, 'queue');
    await this.store.query(this.store.sql.createQueue, [name]);
  }

  /** Deletes the queue with all its tasks and events. */
  async dropQueue(name: string): Promise<void> {
    assertName(name, 'queue');
    await this.store.query(this.store.sql.dropQueue, [name]);
  }

  async listQueues(): Promise<string[]> {
    const rows = await this.store.query(this.store.sql.listQueues, []);
    return rows.map((row) => row.name as string);
  }

  /** Deletes up to `limit` tasks that became terminal at least `olderThanMs` ago; returns how many. */
  async cleanup(options: CleanupOptions): Promise<number> {
    if (options.queue !== undefined) assertName(options.queue, 'queue');
    assertDuration(options.olderThanMs, 'olderThanMs');
    const limit = options.limit ?? 1000;
    assertPositiveInteger(limit, 'limit');
    const row = await this.store.one(this.store.sql.cleanup, [options.queue ?? null, options.olderThanMs, limit]);
    return row.count as number;
  }

  /** One statement for the batch; if it fails for another reason than the connection, each
   * spawn is tried alone, so that one bad spawn cannot fail the others. */
  private async spawnBatch(batch: SpawnArgs[]): Promise<PromiseSettledResult<Row>[]> {
    if (batch.length === 1) return [{ status: 'fulfilled', value: await this.store.one(this.store.sql.spawn, batch[0]) }];
    try {
      const rows = await this.store.query(this.store.sql.spawnBatch, [serializeSpawns(batch)]);
      return rows.map((row) => ({ status: 'fulfilled', value: row }));
    } catch (error) {
      if (isConnectionError(error)) throw error;
      return Promise.allSettled(batch.map((args) => this.store.one(this.store.sql.spawn, args)));
    }
  }

  private definitionNamed(name: string, queue: string | undefined): DurableTaskOptions | undefined {
    const matches = this.definitions.filter(
      (definition) => definition.name === name && (queue === undefined || (definition.queue ?? this.settings.queue) === queue),
    );
    return matches.length === 1 ? matches[0] : undefined;
  }
}

export function settingsOf(options: Partial<ClientSettings>): ClientSettings {
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

/** Spawn options over `@DurableTask` options over module defaults over the built-in ones. */
function resolvePolicy(spawn: TaskPolicyOptions, task: TaskPolicyOptions | undefined, defaults: TaskPolicyOptions) {
  const maxAttempts = spawn.maxAttempts ?? task?.maxAttempts ?? defaults.maxAttempts ?? BUILT_IN_POLICY.maxAttempts;
  const retry = spawn.retry ?? task?.retry ?? defaults.retry ?? BUILT_IN_POLICY.retry;
  const cancellation = spawn.cancellation ?? task?.cancellation ?? defaults.cancellation;
  assertPositiveInteger(maxAttempts, 'maxAttempts');
  assertRetryStrategy(retry, 'retry');
  if (cancellation !== undefined) assertCancellationPolicy(cancellation, 'cancellation');
  return { maxAttempts, retry, cancellation };
}

/** The arguments of `spawn_task`; params and headers are JSON text. */
type SpawnArgs = [
  queue: string, name: string, params: string, headers: string, maxAttempts: number, retry: string,
  cancellation: string | null, idempotencyKey: string | null, delayMs: number | null, runAt: Date | null,
];

/** JSON text for `spawn_batch`; params and headers are spliced in as the text they already are. */
function serializeSpawns(batch: SpawnArgs[]): string {
  return `[${batch
    .map(([queue, name, params, headers, maxAttempts, retry, cancellation, key, delayMs, runAt]) =>
      `[${JSON.stringify(queue)},${JSON.stringify(name)},${params},${headers},${maxAttempts},${retry},` +
      `${cancellation ?? 'null'},${JSON.stringify(key)},${delayMs ?? 'null'},${runAt ? JSON.stringify(runAt.toISOString()) : 'null'}]`,
    )
    .join(',')}]`;
}

function assertTaskId(taskId: unknown): asserts taskId is string {
  if (typeof taskId !== 'string' || !UUID.test(taskId)) {
    throw new InvalidArgumentError(`task id must be a UUID, got ${describe(taskId)}`);
  }
}

function toSnapshot<P = unknown, O = unknown>(row: Row): TaskSnapshot<P, O> {
  const snapshot: TaskSnapshot<P, O> = {
    taskId: row.id as string,
    name: row.name as string,
    queue: row.queue as string,
    state: row.state as TaskState,
    attempts: row.attempts as number,
    params: row.params as P,
    headers: row.headers as Record<string, unknown>,
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
  };
  if (!row.no_result) snapshot.result = row.result as O;
  if (row.error !== null) snapshot.error = row.error as TaskError;
  return snapshot;
}
