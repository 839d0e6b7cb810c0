import { DurableError } from './durable.error.js';

/** No task has this id (it never existed, or `cleanup` removed it). */
export class TaskNotFoundError extends DurableError {
  constructor(readonly taskId: string) {
    super(`no task with id ${taskId}`);
  }
}
