import { DurableError } from './durable.error.js';

/** `ctx.join`, `joinAll` or `joinAny` on a child task that was cancelled. */
export class ChildCancelledError extends DurableError {
  constructor(readonly childTaskId: string) {
    super(`child task ${childTaskId} was cancelled`);
  }
}
