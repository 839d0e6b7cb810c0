import type { SpawnResolver } from '../context/claimed-run.js';
import { redact } from '../db/database-errors.js';
import type { Row, Store } from '../db/store.js';
import type { DurableLogger } from '../support/logger.js';
import { Wakeable } from '../support/wakeable.js';
import { CronSchedule } from './cron.js';

/** The header a scheduled task carries: its tick time, as an ISO string. */
export const SCHEDULED_FOR_HEADER = 'durable.scheduledFor';

/** Without news from the worker's beats for this long, the ticker looks for itself. */
const LONGEST_WAIT_MS = 60_000;

/**
 * Fires the due schedules of a worker's queues: for each, the latest tick that has come (older
 * missed ticks are dropped) is spawned once, by whichever worker locks the schedule's row first
 * (`fire_schedule`: SKIP LOCKED, the row must still expect that tick, and the task's idempotency
 * key is the schedule name and tick time). It sleeps until the next tick. It learns of a
 * schedule made meanwhile by another process from the worker's beat, which reads the next tick
 * of its queues and hands it to `observe` (no statement of the ticker's own while nothing is
 * due; a look of its own only after a minute without a beat). No leader: any worker of the queue
 * can fire, and a crash mid-tick leaves the row unchanged for the next one.
 */
export class ScheduleTicker {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly wakeable = new Wakeable();
  /** The tick the ticker sleeps until (epoch ms), or undefined when it knows of none. */
  private waitingFor: number | undefined;
  /** When the worker's beat last reported (epoch ms, this process's clock). */
  private heardAt = 0;

  constructor(
    private readonly store: Store,
    private readonly queues: string[],
    private readonly spawnRow: SpawnResolver,
    private readonly logger: DurableLogger,
  ) {}

  /** The next tick of the queues' schedules as the worker's beat read it (`next_run_at`, `db_now`): an earlier one wakes the ticker. */
  observe(next: Row): void {
    this.heardAt = Date.now();
    const at = (next.next_run_at as Date | null)?.getTime();
    if (!this.running || at === undefined) return;
    if (this.waitingFor === undefined || at < this.waitingFor) this.wakeable.wake();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wakeable.wake();
    await this.loop;
  }

  /** Fires what is due; returns how long to wait for the next tick (Infinity when there is none). */
  async fireDue(): Promise<number> {
    // One statement while nothing is due (the idle cost), a second one only when something is.
    let next = await this.store.one(this.store.sql.nextSchedule(this.queues));
    if (!next.next_run_at || (next.next_run_at as Date).getTime() > (next.db_now as Date).getTime()) return this.waitFor(next);
    for (const row of await this.store.query(this.store.sql.dueSchedules(this.queues, 100))) {
      try {
        await this.fire(row);
      } catch (error) {
        // One schedule that cannot fire (a task name this process refuses, a bad stored value) does not stop the others.
        this.logger.error(`schedule "${row.name as string}" could not fire: ${redact((error as Error).message)}`);
      }
    }
    next = await this.store.one(this.store.sql.nextSchedule(this.queues));
    // Still due: another worker is firing it, or it cannot fire (logged): look again later, not at once.
    const stillDue = next.next_run_at && (next.next_run_at as Date).getTime() <= (next.db_now as Date).getTime();
    const waitMs = this.waitFor(next);
    return stillDue ? 1000 : waitMs;
  }

  private waitFor(next: Row): number {
    const at = (next.next_run_at as Date | null)?.getTime();
    // Kept in the database's clock, as the beats' ticks are.
    this.waitingFor = at;
    if (at === undefined) return Infinity;
    return Math.max(at - (next.db_now as Date).getTime(), 0);
  }

  private async fire(row: Row): Promise<void> {
    const name = row.name as string;
    const expected = row.next_run_at as Date;
    const now = row.db_now as Date;
    let tick = expected;
    let next: Date;
    try {
      const cron = new CronSchedule(row.cron as string, row.timezone as string);
      const latest = cron.latestAtOrBefore(now);
      if (latest && latest.getTime() > expected.getTime()) tick = latest;
      next = cron.nextAfter(now.getTime() >= tick.getTime() ? now : tick);
    } catch (error) {
      this.logger.error(`schedule "${name}" cannot be read (${(error as Error).message}); fix it with client.schedule() or remove it with unschedule()`);
      return;
    }
    const at = tick.toISOString();
    const spawn = this.spawnRow(row.task_name as string, row.params, {
      queue: row.queue as string,
      idempotencyKey: `durable.schedule:${name}:${at}`,
      headers: { [SCHEDULED_FOR_HEADER]: at },
    });
    await this.store.query(this.store.sql.fireSchedule({ name, expected, next, row: spawn }));
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    while (this.running) {
      let waitMs: number;
      try {
        waitMs = await this.fireDue();
        backoffMs = 0;
      } catch (error) {
        backoffMs = Math.min(Math.max(backoffMs * 2, 100), 10_000);
        this.logger.error(`firing schedules failed, retrying in ${backoffMs} ms: ${redact((error as Error).message)}`);
        waitMs = backoffMs;
      }
      const dueAt = Date.now() + waitMs;
      while (this.running && Date.now() < dueAt) {
        // Woken by a beat that reads an earlier tick, or stopped.
        if (await this.wakeable.wait(Math.min(dueAt - Date.now(), LONGEST_WAIT_MS))) break;
        // A minute without a beat (failing, or the worker stopped beating): look for itself.
        if (Date.now() - this.heardAt >= LONGEST_WAIT_MS) break;
      }
    }
  }
}
