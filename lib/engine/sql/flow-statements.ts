import type { SpawnRow, Statement } from './statement-types.js';

/** A task name's limits as `flow_limits` stores them (null: no such limit). */
export interface FlowLimitRow {
  queue: string;
  name: string;
  concurrency: number | null;
  rateMax: number | null;
  ratePerMs: number | null;
}

/** A schedule's row; `params` is JSON text. */
export interface ScheduleRow {
  name: string;
  cron: string;
  taskName: string;
  queue: string;
  timezone: string;
  params: string;
  nextRunAt: Date;
}

/**
 * The statements of flow limits and schedules (issue 15), spread into `buildStatements`.
 * `s` is the quoted schema.
 */
export function flowStatements(s: string, q: (text: string, values: unknown[]) => Statement) {
  const scheduleColumns = `name, cron, task_name, queue, timezone, params, next_run_at`;
  return {
    /** Upserts the limits of these names (both limits null: the row is deleted). */
    syncFlowLimits: (rows: FlowLimitRow[]) => q(`
      with given as (
        select x.queue, x.name, x.concurrency, x.rate_max, x.rate_per_ms
        from json_to_recordset($1::json) as x(queue text, name text, concurrency integer, rate_max integer, rate_per_ms double precision)
      ), removed as (
        delete from ${s}.flow_limits l using given g
        where l.queue = g.queue and l.name = g.name and g.concurrency is null and g.rate_max is null
        returning 1
      )
      insert into ${s}.flow_limits (queue, name, concurrency, rate_max, rate_per_ms, updated_at)
      select g.queue, g.name, g.concurrency, g.rate_max, g.rate_per_ms, ${s}.now() from given g
      where g.concurrency is not null or g.rate_max is not null
      on conflict (queue, name) do update set concurrency = excluded.concurrency, rate_max = excluded.rate_max,
        rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at
        where (${s}.flow_limits.concurrency, ${s}.flow_limits.rate_max, ${s}.flow_limits.rate_per_ms)
          is distinct from (excluded.concurrency, excluded.rate_max, excluded.rate_per_ms)`, [
      JSON.stringify(rows.map((r) => ({ queue: r.queue, name: r.name, concurrency: r.concurrency, rate_max: r.rateMax, rate_per_ms: r.ratePerMs }))),
    ]),

    /**
     * Creates or replaces a schedule. `keepNext`: a row with the same cron and zone keeps its
     * next tick (a restart neither replays nor skips one); otherwise `nextRunAt` is taken.
     */
    upsertSchedule: (r: ScheduleRow) => q(`
      insert into ${s}.schedules (name, cron, task_name, queue, timezone, params, next_run_at, created_at, updated_at)
      values ($1, $2, $3, $4, $5, $6::json, $7, ${s}.now(), ${s}.now())
      on conflict (name) do update set cron = excluded.cron, task_name = excluded.task_name, queue = excluded.queue,
        timezone = excluded.timezone, params = excluded.params, updated_at = excluded.updated_at,
        next_run_at = case when (${s}.schedules.cron, ${s}.schedules.timezone) = (excluded.cron, excluded.timezone)
          then ${s}.schedules.next_run_at else excluded.next_run_at end
      returning next_run_at`, [r.name, r.cron, r.taskName, r.queue, r.timezone, r.params, r.nextRunAt]),
    deleteSchedule: (name: string) => q(`delete from ${s}.schedules where name = $1`, [name]),
    listSchedules: () => q(`select ${scheduleColumns} from ${s}.schedules order by name`, []),
    /** The schedules of these queues due now, and the database time. */
    dueSchedules: (queues: string[], limit: number) => q(`
      select ${scheduleColumns}, ${s}.now() as db_now from ${s}.schedules
      where queue = any($1) and next_run_at <= ${s}.now()
      order by next_run_at limit $2`, [queues, limit]),
    /** When the next schedule of these queues is due (null: none), and the database time. */
    nextSchedule: (queues: string[]) => q(`
      select min(next_run_at) as next_run_at, ${s}.now() as db_now from ${s}.schedules where queue = any($1)`, [queues]),
    /** Spawns one tick's task if the row still expects `expected` (outcome 'fired' or 'skipped'). */
    fireSchedule: (a: { name: string; expected: Date; next: Date; row: SpawnRow }) => q(`
      select * from ${s}.fire_schedule($1, $2, $3, $4, $5, $6::json, $7::json, $8, $9::jsonb, $10::jsonb, $11)`, [
      a.name, a.expected, a.next, a.row.queue, a.row.name, a.row.params, a.row.headers, a.row.maxAttempts,
      a.row.retry, a.row.cancellation, a.row.idempotencyKey,
    ]),
  } as const;
}
