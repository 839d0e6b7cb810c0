import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { ScheduleInfo, ScheduleOptions } from '../../interfaces/schedule.interface.js';
import type { DurableTaskOptions } from '../../interfaces/task-options.interface.js';
import type { Store } from '../db/store.js';
import type { ClientSettings } from '../options.js';
import { toJson } from '../support/json.js';
import { assertName, describe } from '../support/validation.js';
import { CronSchedule } from './cron.js';

/** `client.schedule`, `unschedule` and `listSchedules`. Every check happens before anything is written. */
export class SchedulesClient {
  constructor(private readonly store: Store, private readonly settings: ClientSettings) {}

  /** Creates or replaces the schedule `name`; the same cron and zone keep the next tick already planned. */
  async schedule(name: string, options: ScheduleOptions): Promise<void> {
    assertName(name, 'schedule name');
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError(`schedule options must be { cron, task, params?, timezone?, queue? }, got ${describe(options)}`);
    }
    assertName(options.task, 'schedule task');
    const queue = options.queue ?? this.settings.queue;
    assertName(queue, 'queue');
    const cron = new CronSchedule(options.cron, options.timezone ?? 'UTC');
    const params = toJson(options.params ?? null, `the params of schedule "${name}"`, this.settings.maxPayloadBytes).text ?? 'null';
    await this.store.query(this.store.sql.upsertSchedule({
      name, cron: cron.expression, taskName: options.task, queue, timezone: cron.timezone, params,
      nextRunAt: cron.nextAfter(new Date()),
    }));
  }

  /** Removes the schedule; a no-op for an unknown name. Tasks already spawned are left alone. */
  async unschedule(name: string): Promise<void> {
    assertName(name, 'schedule name');
    await this.store.query(this.store.sql.deleteSchedule(name));
  }

  async listSchedules(): Promise<ScheduleInfo[]> {
    const rows = await this.store.query(this.store.sql.listSchedules());
    return rows.map((row) => ({
      name: row.name as string, cron: row.cron as string, taskName: row.task_name as string, queue: row.queue as string,
      timezone: row.timezone as string, params: row.params, nextRunAt: row.next_run_at as Date,
    }));
  }

  /** The schedules declared by `@DurableTask({ schedule })`, each under its task's name (checked by the registry). */
  async declare(tasks: { options: DurableTaskOptions; queue: string }[]): Promise<void> {
    for (const { options, queue } of tasks) {
      if (!options.schedule) continue;
      await this.schedule(options.name, {
        cron: options.schedule.cron, task: options.name, params: options.schedule.params,
        timezone: options.schedule.timezone, queue,
      });
    }
  }
}
