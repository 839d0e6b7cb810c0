import { assertDate, assertDuration } from '../engine/support/validation.js';
import { DurableError } from './durable.error.js';

/**
 * Throw it from a handler to fail this attempt and start the next one no earlier than `delayMs`
 * from now (database clock) or than the given `Date`, instead of after the retry strategy's
 * delay. It still counts against `maxAttempts`.
 */
export class RetryAfterError extends DurableError {
  /** The delay in milliseconds, when one was given. */
  readonly retryAfterMs: number | undefined;
  /** The time, when a Date was given. */
  readonly retryAt: Date | undefined;

  constructor(delayMsOrDate: number | Date, message?: string) {
    if (delayMsOrDate instanceof Date) assertDate(delayMsOrDate, 'RetryAfterError date');
    else assertDuration(delayMsOrDate, 'RetryAfterError delayMs');
    const when = delayMsOrDate instanceof Date ? delayMsOrDate.toISOString() : `${delayMsOrDate} ms`;
    super(message ?? `retry after ${when}`);
    if (delayMsOrDate instanceof Date) {
      this.retryAt = delayMsOrDate;
      this.retryAfterMs = undefined;
    } else {
      this.retryAfterMs = delayMsOrDate;
      this.retryAt = undefined;
    }
  }
}
