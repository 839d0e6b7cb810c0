import { DurableError } from './durable.error.js';

/**
 * PostgreSQL cancelled the statement because it ran longer than `queryTimeoutMs`
 * (`statement_timeout`) or waited too long for a lock held by another transaction
 * (`lock_timeout`). The statement was rolled back: nothing was written, and retrying is safe.
 * `code` is the SQLSTATE: `57014` (query_canceled) or `55P03` (lock_not_available).
 */
export class DatabaseTimeoutError extends DurableError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}
