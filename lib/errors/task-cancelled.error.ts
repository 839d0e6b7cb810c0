import { DurableError } from './durable.error.js';

/** `awaitResult` on a task that ended `cancelled`. */
export class TaskCancelledError extends DurableError {
  constructor(
    readonly taskId: string,
    reason?: string,
  ) {
    super(`task ${taskId} was cancelled${reason ? `: ${reason}` : ''}`);
  }
}
