import { DurableError } from './durable.error.js';

/** `awaitEvent` ran out of time. Uncaught, it fails the task without further attempts. */
export class EventTimeoutError extends DurableError {
  constructor(readonly eventName: string) {
    super(`event "${eventName}" was not emitted before the timeout`);
  }
}
