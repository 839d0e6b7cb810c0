import { DurableError } from './durable.error.js';

/** A bad name, duration, option or id. Nothing was written. */
export class InvalidArgumentError extends DurableError {}
