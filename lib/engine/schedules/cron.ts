import { Cron } from 'croner';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import { assertName, describe } from '../support/validation.js';

/** The next tick of a schedule that has none left (a cron whose last date passed). */
export const NEVER = new Date('9999-12-31T00:00:00.000Z');

/**
 * A cron expression read by croner: 5 fields (minute first) or 6 (second first), in an IANA
 * zone (daylight-saving changes as croner handles them). Refuses, with `InvalidArgumentError`,
 * anything croner cannot parse, a zone the runtime does not know, and an expression that never fires.
 */
export class CronSchedule {
  private readonly cron: Cron;

  constructor(readonly expression: string, readonly timezone: string) {
    assertName(expression, 'cron');
    assertName(timezone, 'timezone');
    const fields = expression.trim().split(/\s+/).length;
    if (fields !== 5 && fields !== 6) {
      throw new InvalidArgumentError(`cron must have 5 fields (minute hour day month weekday) or 6 (with seconds first), got ${describe(expression)}`);
    }
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      throw new InvalidArgumentError(`timezone must be an IANA time zone name such as 'UTC' or 'Europe/Paris', got ${describe(timezone)}`);
    }
    try {
      this.cron = new Cron(expression, { timezone, mode: '5-or-6-parts', paused: true });
    } catch (error) {
      throw new InvalidArgumentError(`cron ${describe(expression)} is not a valid expression: ${(error as Error).message}`);
    }
    if (!this.cron.nextRun()) throw new InvalidArgumentError(`cron ${describe(expression)} never fires`);
  }

  /** The first tick strictly after `after`, or NEVER. */
  nextAfter(after: Date): Date {
    return this.cron.nextRun(after) ?? NEVER;
  }

  /** The latest tick at or before `at`, or null. */
  latestAtOrBefore(at: Date): Date | null {
    const [previous] = this.cron.previousRuns(1, new Date(at.getTime() + 1));
    return previous && previous.getTime() <= at.getTime() ? previous : null;
  }
}
