import type {
  CheckpointInfo, ChildTaskInfo, EventWaitInfo, InspectTaskOptions, RunInfo, TaskDetail,
} from '../../interfaces/task-detail.interface.js';
import type { TaskError, TaskState } from '../../interfaces/task-snapshot.interface.js';
import type { Store } from '../db/store.js';
import { assertPositiveInteger } from '../support/validation.js';
import { assertTaskId, toSnapshot } from './snapshot.js';

/** The rows of `inspectTask`'s json aggregates (timestamps arrive as ISO text). */
type Json = Record<string, unknown>;

/**
 * `DurableClient.inspectTask`: a task with its runs, checkpoints, event waits and children, read
 * by one statement (so one consistent snapshot); `null` for an unknown id.
 */
export async function inspectTask<P = unknown, O = unknown>(
  store: Store, taskId: string, options: InspectTaskOptions = {},
): Promise<TaskDetail<P, O> | null> {
  assertTaskId(taskId);
  const childLimit = options.childLimit ?? 100;
  assertPositiveInteger(childLimit, 'childLimit');
  const [row] = await store.query(store.sql.inspectTask(taskId, Math.min(childLimit, 1000)));
  if (!row) return null;
  return {
    task: toSnapshot<P, O>(row),
    runs: (row.i_runs as Json[]).map(toRun),
    checkpoints: (row.i_checkpoints as [string, unknown, boolean, number, string][]).map(toCheckpoint),
    eventWaits: (row.i_waits as Json[]).map(toEventWait),
    children: (row.i_children as Json[]).map(toChild),
    childCount: row.i_child_count as number,
  };
}

function toRun(r: Json): RunInfo {
  return {
    runId: r.runId as string,
    attempt: r.attempt as number,
    state: r.state as TaskState,
    workerId: (r.workerId as string | null) ?? null,
    createdAt: date(r.createdAt),
    availableAt: dateOrNull(r.availableAt),
    startedAt: dateOrNull(r.startedAt),
    finishedAt: dateOrNull(r.finishedAt),
    leaseExpiresAt: dateOrNull(r.leaseExpiresAt),
    claims: r.claims as number,
    error: (r.error as TaskError | null) ?? null,
  };
}

function toCheckpoint([name, value, isNull, attempt, createdAt]: [string, unknown, boolean, number, string]): CheckpointInfo {
  const colon = name.indexOf(':');
  return { name, kind: colon < 0 ? name : name.slice(0, colon), value: isNull ? undefined : value, attempt, createdAt: date(createdAt) };
}

function toEventWait(w: Json): EventWaitInfo {
  return {
    eventName: w.eventName as string,
    queue: w.queue as string,
    stepName: w.stepName as string,
    timeoutAt: dateOrNull(w.timeoutAt),
    createdAt: date(w.createdAt),
    emittedAt: dateOrNull(w.emittedAt),
  };
}

function toChild(c: Json): ChildTaskInfo {
  return {
    taskId: c.taskId as string,
    name: c.name as string,
    queue: c.queue as string,
    state: c.state as TaskState,
    attempts: c.attempts as number,
    createdAt: date(c.createdAt),
    finishedAt: dateOrNull(c.finishedAt),
  };
}

function date(value: unknown): Date {
  return new Date(value as string);
}

function dateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : new Date(value as string);
}
