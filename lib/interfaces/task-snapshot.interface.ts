/** The states of a task (its runs have the same ones); the last three are terminal. */
export const TASK_STATES = ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'] as const;

export type TaskState = (typeof TASK_STATES)[number];

/** A recorded failure: the thrown error's `name` and `message`, plus what the failure recorded. */
export interface TaskError {
  name: string;
  message: string;
  [key: string]: unknown;
}

/**
 * Why an unfinished task is not running: 'queued' (runnable, waiting for a free worker slot),
 * 'delayed' (a start time in the future), 'retry' (waiting out a retry delay), 'sleep', 'event',
 * 'children', 'concurrency' or 'rateLimit' (held back by a limit), 'noWorker' (nothing has polled
 * its queue recently).
 */
export const WAITING_REASONS = ['queued', 'delayed', 'retry', 'sleep', 'event', 'children', 'concurrency', 'rateLimit', 'noWorker'] as const;

export type WaitingReason = (typeof WAITING_REASONS)[number];

/** `TaskSnapshot.waitingFor`: computed from the database when the snapshot is read. */
export interface WaitingFor {
  reason: WaitingReason;
  /** The same in one line, for people. */
  message: string;
  /** When the wait ends by itself (a sleep's wake time, a delay, a retry, an event's or a join's timeout). */
  until?: Date;
  /** For 'event': the awaited event's name. */
  eventName?: string;
  /** For 'children': the children the task still waits for that have not finished. */
  childTaskIds?: string[];
}

export interface TaskSnapshot<P = unknown, O = unknown> {
  taskId: string;
  name: string;
  queue: string;
  state: TaskState;
  /** The number of the latest attempt. */
  attempts: number;
  params: P;
  headers: Record<string, unknown>;
  result?: O;
  error?: TaskError;
  createdAt: Date;
  updatedAt: Date;
  /** The task whose `ctx.spawn` created this one; `null` for a top-level task. */
  parentTaskId: string | null;
  /** The last value the task gave `ctx.setProgress` (any JSON); `null` before the first call. */
  progress: unknown;
  /** Why the task is not running now; `null` when it is running or terminal. */
  waitingFor: WaitingFor | null;
}

export interface ListTasksOptions {
  queue?: string;
  state?: TaskState;
  name?: string;
  /** @default 50 (at most 1000) */
  limit?: number;
  /** The `taskId` of the last task of the previous page (`TaskNotFoundError` if it was deleted since). */
  cursor?: string;
  /** Only the children of this task (spawned by its `ctx.spawn`). */
  parentTaskId?: string;
}

export interface AwaitResultOptions {
  /** Reject with `TimeoutError` after this long. @default wait forever */
  timeoutMs?: number;
}

/**
 * What `cleanup` deletes: terminal tasks (with their runs, checkpoints and waits), and events.
 * Events are deleted when nothing needs them: a placeholder (a name awaited but never emitted)
 * as soon as no wait refers to it, and an emitted event once it was emitted at least
 * `olderThanMs` ago. An emitted event is a latch: after it is deleted, a task that awaits the
 * same name waits for a new emit (or its timeout). Choose `olderThanMs` longer than any task
 * may take to reach its `awaitEvent` of that name after the emit.
 */
export interface CleanupOptions {
  /** @default every queue */
  queue?: string;
  /** Delete tasks that became terminal, and events emitted, at least this long ago. */
  olderThanMs: number;
  /** The most tasks, and the most events, deleted by one call. @default 1000 */
  limit?: number;
}

/** One queue's tasks by state (`DurableClient.stats`). */
export interface QueueStats {
  queue: string;
  pending: number;
  running: number;
  sleeping: number;
  completed: number;
  failed: number;
  cancelled: number;
  /**
   * How long the oldest pending task that could start now has been waiting for a worker (since
   * it became due: spawned, or its delay or retry backoff ended); `null` when none is waiting.
   */
  oldestPendingAgeMs: number | null;
}

export interface StatsOptions {
  /** Only this queue (reported with zeros when it has no tasks). @default every queue */
  queue?: string;
}
