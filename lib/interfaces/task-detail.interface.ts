import type { TaskError, TaskSnapshot, TaskState } from './task-snapshot.interface.js';

/** One attempt at executing a task (a `runs` row). */
export interface RunInfo {
  runId: string;
  attempt: number;
  state: TaskState;
  /** The worker that claimed it last; `null` before its first claim. */
  workerId: string | null;
  createdAt: Date;
  /** When it may be claimed (start, wake or retry time); `null` for a wait without a timeout. */
  availableAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** The running claim's lease; `null` unless running. */
  leaseExpiresAt: Date | null;
  /** How many times it was claimed (resumptions after a sleep or wait count). */
  claims: number;
  /** Why this attempt failed or was cancelled. */
  error: TaskError | null;
}

/** A committed checkpoint: a step's result, a sleep's wake time, an event's payload, a spawn's handle... */
export interface CheckpointInfo {
  /** As stored: `<kind>:<name>`, then `#2`, `#3` for repeats (e.g. `step:charge`, `event:paid`). */
  name: string;
  /** The part before the first ':' ('step', 'sleep', 'event', 'emit', 'spawn', 'join', 'value', ...). */
  kind: string;
  /** The stored JSON value (`undefined` for a step that returned nothing). */
  value: unknown;
  /** The attempt that committed it. */
  attempt: number;
  createdAt: Date;
}

/** An event the task's live run waits for now. */
export interface EventWaitInfo {
  eventName: string;
  queue: string;
  /** The checkpoint name the outcome will be stored under. */
  stepName: string;
  /** When the wait times out; `null` for none. */
  timeoutAt: Date | null;
  createdAt: Date;
  /** Set when the event was emitted meanwhile (the task resumes at its next claim). */
  emittedAt: Date | null;
}

/** A child task, in brief. */
export interface ChildTaskInfo {
  taskId: string;
  name: string;
  queue: string;
  state: TaskState;
  attempts: number;
  createdAt: Date;
  finishedAt: Date | null;
}

/** `DurableClient.inspectTask`: one task and everything an operator looks at, read in one snapshot. */
export interface TaskDetail<P = unknown, O = unknown> {
  task: TaskSnapshot<P, O>;
  /** Every attempt, oldest first. */
  runs: RunInfo[];
  /** In the order they were committed. */
  checkpoints: CheckpointInfo[];
  /** The event waits of the live run. */
  eventWaits: EventWaitInfo[];
  /** The first `childLimit` children, oldest first. */
  children: ChildTaskInfo[];
  /** How many children the task has in all. */
  childCount: number;
}

export interface InspectTaskOptions {
  /** The most children listed (`childCount` says how many there are). @default 100 (at most 1000) */
  childLimit?: number;
}
