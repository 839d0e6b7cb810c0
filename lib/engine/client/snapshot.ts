import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { TaskError, TaskSnapshot, TaskState } from '../../interfaces/task-snapshot.interface.js';
import type { Row } from '../db/store.js';
import { describe } from '../support/validation.js';
import { toWaitingFor } from './waiting-for.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertTaskId(taskId: unknown): asserts taskId is string {
  if (typeof taskId !== 'string' || !UUID.test(taskId)) {
    throw new InvalidArgumentError(`task id must be a UUID, got ${describe(taskId)}`);
  }
}

/**
 * A `tasks` row as the public snapshot; `result` is absent (not undefined) when there is none.
 * `waitingFor` needs the row's w_* columns (statements built on `tasksWithWaiting`).
 */
export function toSnapshot<P = unknown, O = unknown>(row: Row): TaskSnapshot<P, O> {
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
    parentTaskId: (row.parent_task_id as string | null) ?? null,
    progress: row.progress ?? null,
    waitingFor: null,
  };
  if (!row.no_result) snapshot.result = row.result as O;
  if (row.error !== null) snapshot.error = row.error as TaskError;
  snapshot.waitingFor = toWaitingFor(row, snapshot);
  return snapshot;
}
