import { DurableError } from './durable.error.js';

/** Throw it from a handler to fail the task at once, without further attempts. */
export class NonRetryableError extends DurableError {}
