import type { TaskError } from '../interfaces/task-snapshot.interface.js';
import { DurableError } from './durable.error.js';

/** `awaitResult` on a task that ended `failed`; `error` is what the last attempt recorded. */
export class TaskFailedError extends DurableError {
  constructor(
    readonly taskId: string,
    readonly error: TaskError,
  ) {
    super(`task ${taskId} failed: ${error.name}: ${error.message}`);
  }
}
