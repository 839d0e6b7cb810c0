import { DurableError } from './durable.error.js';

/** A value that is not plain JSON, or that Postgres cannot store (NUL characters, lone surrogates), or is too large. Nothing was written. */
export class SerializationError extends DurableError {}
