import { DurableError } from './durable.error.js';

/**
 * A statement was sent but PostgreSQL never answered (a network partition, a server that stopped
 * responding): it may or may not have committed. Do not simply retry a write: check first
 * whether it took effect (for a spawn, spawn again with the same `idempotencyKey`, which returns
 * the task if it exists; otherwise look the task up), then retry what did not happen.
 */
export class OutcomeUnknownError extends DurableError {}
