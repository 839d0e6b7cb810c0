/** Options of `DurableClient.schedule`. */
export interface ScheduleOptions {
  /** 5 fields (minute first) or 6 (second first), as croner reads them. */
  cron: string;
  /** The task each tick spawns: a task name. */
  task: string;
  /** The params of each tick's task. @default null */
  params?: unknown;
  /** An IANA zone the cron is read in. @default 'UTC' */
  timezone?: string;
  /** The queue the tasks are spawned on (and whose workers fire the ticks). @default the module's queue */
  queue?: string;
}

/** A schedule as `listSchedules` returns it. */
export interface ScheduleInfo {
  name: string;
  cron: string;
  taskName: string;
  queue: string;
  timezone: string;
  params: unknown;
  /** The next tick to spawn (it may be in the past while no worker of its queue polls). */
  nextRunAt: Date;
}
