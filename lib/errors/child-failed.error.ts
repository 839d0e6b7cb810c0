import { DurableError } from './durable.error.js';

/** `ctx.join`, `joinAll` or `joinAny` on a child task that failed for good. */
export class ChildFailedError extends DurableError {
  constructor(
    readonly childTaskId: string,
    readonly childError: { name: string; message: string },
  ) {
    super(`child task ${childTaskId} failed: ${childError.name}: ${childError.message}`);
  }
}
