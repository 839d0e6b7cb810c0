import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import { TaskCancelledError } from '../../errors/task-cancelled.error.js';
import { TaskFailedError } from '../../errors/task-failed.error.js';
import { TaskNotFoundError } from '../../errors/task-not-found.error.js';
import { TimeoutError } from '../../errors/timeout.error.js';
import type { DurableModuleOptions } from '../../interfaces/durable-options.interface.js';
import type { InspectTaskOptions, TaskDetail } from '../../interfaces/task-detail.interface.js';
import type { ScheduleInfo, ScheduleOptions } from '../../interfaces/schedule.interface.js';
import type { DurableTaskOptions, EmitOptions, SpawnOptions, SpawnResult } from '../../interfaces/task-options.interface.js';
import {
  TASK_STATES, type AwaitResultOptions, type CleanupOptions, type ListTasksOptions, type QueueStats, type StatsOptions, type TaskSnapshot,
} from '../../interfaces/task-snapshot.interface.js';
import type { Observable } from 'rxjs';
import { DurableConnection } from '../db/connection.js';
import type { Notifier } from '../db/notifier.js';
import { WatchHub } from '../watch/watch-hub.js';
import { queueStats } from './queue-stats.js';
import { ExecutionLinks } from './execution-links.js';
import { SpawnHooks, type SpawnHook } from './spawn-hooks.js';
import type { Store } from '../db/store.js';
import { resolveOptions, type ClientSettings } from '../options.js';
import { requireTaskOptions, type TaskHandlerClass } from '../registry/task-metadata.js';
import type { SpawnRow } from '../sql/statements.js';
import { SchedulesClient } from '../schedules/schedules-client.js';
import { toJson } from '../support/json.js';
import { consoleLogger, type DurableLogger } from '../support/logger.js';
import { assertDuration, assertName, assertPositiveInteger, describe } from '../support/validation.js';
import { delay } from '../support/wakeable.js';
import { inspectTask } from './inspect-task.js';
import { assertTaskId, toSnapshot } from './snapshot.js';
import { SharedSpawns } from './shared-spawns.js';
import { toSpawnRow } from './spawn-request.js';

/** Options of `DurableClient.connect`: the module's options without a worker. */
export type DurableClientOptions = Omit<DurableModuleOptions, 'worker'> & {
  logger?: DurableLogger;
};

/**
 * Spawns tasks, emits events and reads or manages tasks. Injected by `DurableModule`; outside
 * Nest, `DurableClient.connect(options)` opens one of its own (close it with `close()`).
 */
export class DurableClient {
  /** `@DurableTask` options of the handlers known in this process, for spawns by name. */
  private readonly definitions: DurableTaskOptions[] = [];
  private readonly spawns: SharedSpawns;
  private readonly watches: WatchHub;
  private readonly hooks = new SpawnHooks();
  private links: ExecutionLinks | undefined;
  /** @internal Schedules (client.schedule and the ones `@DurableTask` declares). */
  readonly schedules: SchedulesClient;

  constructor(
    private readonly store: Store,
    private readonly settings: ClientSettings,
    private readonly connection?: DurableConnection,
    notifier: Notifier | undefined = connection?.notifier,
    logger: DurableLogger = consoleLogger,
  ) {
    this.schedules = new SchedulesClient(store, settings);
    this.spawns = new SharedSpawns(store);
    this.watches = new WatchHub(store, notifier, logger);
  }

  static async connect(options: DurableClientOptions = {}): Promise<DurableClient> {
    const resolved = resolveOptions({ ...options, worker: false }); // refuses bad options before anything connects
    const connection = await DurableConnection.open(resolved.connection, options.logger ?? consoleLogger);
    return new DurableClient(connection.store, resolved.client, connection, connection.notifier, options.logger ?? consoleLogger);
  }

  /** Completes every `watch`, then closes the connection `connect` opened (not the one Nest injects). */
  async close(): Promise<void> {
    await this.watches.close();
    await this.connection?.close();
  }

  /** @internal Called by the module with the handlers it discovered. */
  registerDefinitions(definitions: DurableTaskOptions[]): void {
    this.definitions.push(...definitions);
  }

  spawn<P, O>(task: TaskHandlerClass<P, O>, params: P, options?: SpawnOptions): Promise<SpawnResult>;
  spawn(task: string, params?: unknown, options?: SpawnOptions): Promise<SpawnResult>;
  async spawn(task: string | TaskHandlerClass, params?: unknown, options: SpawnOptions = {}): Promise<SpawnResult> {
    const { row, after } = this.hooks.apply(this.checkedRow(task, params, options), false);
    try {
      // In the caller's transaction a spawn goes alone; otherwise it shares a commit with the
      // spawns issued at the same time.
      const spawned = options.manager ? await this.store.one(this.store.sql.spawn(row), options.manager) : await this.spawns.spawn(row);
      const result = { taskId: spawned.task_id as string, runId: spawned.run_id as string, attempt: spawned.attempt as number, created: spawned.created as boolean };
      after(result);
      return result;
    } catch (error) {
      after({ error });
      throw error;
    }
  }

  /** Adds a hook told of every spawn (telemetry's trace context); the returned function removes it. */
  addSpawnHook(hook: SpawnHook): () => void {
    return this.hooks.add(hook);
  }

  /**
   * @internal Stores an observer's opaque note about a task's latest execution (telemetry: its
   * trace context) and resolves with the note it replaced.
   */
  swapLastExecution(taskId: string, value: string): Promise<string | null> {
    this.links ??= new ExecutionLinks(this.store);
    return this.links.swap(taskId, value);
  }

  /** @internal The checked row of a `ctx.spawn`, resolved as `spawn` resolves it, with the hooks' headers; throws on bad input. */
  spawnRow(task: string | TaskHandlerClass, params: unknown, options: SpawnOptions): SpawnRow {
    return this.hooks.apply(this.checkedRow(task, params, options), true).row;
  }

  private checkedRow(task: string | TaskHandlerClass, params: unknown, options: SpawnOptions): SpawnRow {
    const definition = typeof task === 'string' ? this.definitionNamed(task, options.queue) : requireTaskOptions(task);
    return toSpawnRow(typeof task === 'string' ? task : definition?.name, params, options, definition, this.settings);
  }

  /** Emits an event: the first emit of a name on a queue wins, later ones change nothing. */
  async emitEvent(eventName: string, payload?: unknown, options: EmitOptions = {}): Promise<void> {
    assertName(eventName, 'event name');
    const queue = options.queue ?? this.settings.queue;
    assertName(queue, 'queue');
    const json = toJson(payload ?? null, `the payload of event "${eventName}"`, this.settings.maxPayloadBytes);
    await this.store.query(this.store.sql.emit(queue, eventName, json.text ?? 'null'), options.manager);
  }

  async getTask<P = unknown, O = unknown>(taskId: string): Promise<TaskSnapshot<P, O> | null> {
    assertTaskId(taskId);
    const [row] = await this.store.query(this.store.sql.getTask(taskId));
    return row ? toSnapshot<P, O>(row) : null;
  }

  /** The task with its runs, checkpoints (in order), event waits and children, for operators; `null` for an unknown id. */
  inspectTask<P = unknown, O = unknown>(taskId: string, options?: InspectTaskOptions): Promise<TaskDetail<P, O> | null> {
    return inspectTask<P, O>(this.store, taskId, options);
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

  /**
   * The task's snapshot now, then one on each change of its state, attempts or progress;
   * completes after a terminal state. `TaskNotFoundError` for an unknown id. One LISTEN
   * connection and one poll per process serve every watcher (see `WatchHub`).
   */
  watch<P = unknown, O = unknown>(taskId: string): Observable<TaskSnapshot<P, O>> {
    return this.watches.watch(taskId) as Observable<TaskSnapshot<P, O>>;
  }

  /** Per queue: the tasks in each state and the wait of the oldest due pending task (cheap: counters, not a scan). */
  stats(options?: StatsOptions): Promise<QueueStats[]> {
    return queueStats(this.store, options);
  }

  /** Tasks newest first; pass the last `taskId` of a page as `cursor` for the next. */
  async listTasks(options: ListTasksOptions = {}): Promise<TaskSnapshot[]> {
    if (options.queue !== undefined) assertName(options.queue, 'queue');
    if (options.name !== undefined) assertName(options.name, 'task name');
    if (options.state !== undefined && !TASK_STATES.includes(options.state)) {
      throw new InvalidArgumentError(`state must be one of ${TASK_STATES.join(', ')}, got ${describe(options.state)}`);
    }
    if (options.cursor !== undefined) assertTaskId(options.cursor);
    if (options.parentTaskId !== undefined) assertTaskId(options.parentTaskId);
    const limit = options.limit ?? 50;
    assertPositiveInteger(limit, 'limit');
    // A page after a task that is gone cannot be placed: say so rather than return nothing.
    if (options.cursor !== undefined && (await this.store.query(this.store.sql.taskExists(options.cursor))).length === 0) {
      throw new TaskNotFoundError(options.cursor);
    }
    const rows = await this.store.query(this.store.sql.listTasks({
      queue: options.queue ?? null, state: options.state ?? null, name: options.name ?? null,
      cursor: options.cursor ?? null, limit: Math.min(limit, 1000), parentTaskId: options.parentTaskId ?? null,
    }));
    return rows.map((row) => toSnapshot(row));
  }

  /** Cancels a task that has not finished; running code stops at its next context call. */
  async cancel(taskId: string): Promise<void> {
    assertTaskId(taskId);
    const row = await this.store.one(this.store.sql.cancel(taskId));
    if (row.outcome === 'not_found') throw new TaskNotFoundError(taskId);
  }

  /** Gives a failed or cancelled task a new attempt; its checkpoints are kept. */
  async retry(taskId: string): Promise<void> {
    assertTaskId(taskId);
    const row = await this.store.one(this.store.sql.retry(taskId));
    if (row.outcome === 'not_found') throw new TaskNotFoundError(taskId);
    if (row.outcome !== 'failed' && row.outcome !== 'cancelled') {
      throw new InvalidArgumentError(`task ${taskId} is ${row.outcome as string}; only failed or cancelled tasks can be retried`);
    }
  }

  /** Creates or replaces the schedule `name`: each tick of `cron` spawns one `task` (see ScheduleOptions). */
  schedule(name: string, options: ScheduleOptions): Promise<void> {
    return this.schedules.schedule(name, options);
  }

  /** Removes a schedule (a no-op for an unknown name). */
  unschedule(name: string): Promise<void> {
    return this.schedules.unschedule(name);
  }

  listSchedules(): Promise<ScheduleInfo[]> {
    return this.schedules.listSchedules();
  }

  async createQueue(name: string): Promise<void> {
    assertName(name, 'queue');
    await this.store.query(this.store.sql.createQueue(name));
  }

  /** Deletes the queue with all its tasks and events. */
  async dropQueue(name: string): Promise<void> {
    assertName(name, 'queue');
    await this.store.query(this.store.sql.dropQueue(name));
  }

  async listQueues(): Promise<string[]> {
    const rows = await this.store.query(this.store.sql.listQueues());
    return rows.map((row) => row.name as string);
  }

  /**
   * Deletes up to `limit` tasks that became terminal at least `olderThanMs` ago (returns how
   * many), and up to `limit` events that nothing needs: placeholders no wait refers to, and
   * events emitted at least `olderThanMs` ago (see `CleanupOptions`).
   */
  async cleanup(options: CleanupOptions): Promise<number> {
    if (options.queue !== undefined) assertName(options.queue, 'queue');
    assertDuration(options.olderThanMs, 'olderThanMs');
    const limit = options.limit ?? 1000;
    assertPositiveInteger(limit, 'limit');
    const row = await this.store.one(this.store.sql.cleanup({ queue: options.queue ?? null, olderThanMs: options.olderThanMs, limit }));
    return row.count as number;
  }

  private definitionNamed(name: string, queue: string | undefined): DurableTaskOptions | undefined {
    const matches = this.definitions.filter(
      (definition) => definition.name === name && (queue === undefined || (definition.queue ?? this.settings.queue) === queue),
    );
    return matches.length === 1 ? matches[0] : undefined;
  }
}
