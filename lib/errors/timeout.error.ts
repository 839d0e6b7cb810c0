import { DurableError } from './durable.error.js';

/** A client-side wait (such as `awaitResult` with `timeoutMs`) ran out of time. */
export class TimeoutError extends DurableError {}
