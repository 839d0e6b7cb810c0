import { encodeSpawns, encodeWrites } from './batch-json.js';
import type { ClaimArgs, ListTasksArgs, RunFence, SpawnRow, Statement, WorkerWrite } from './statement-types.js';
import { channelsOf } from './channels.js';
import { flowStatements } from './flow-statements.js';
import { quoteSchema } from './schema-name.js';

export type * from './statement-types.js';

/**
 * Every statement durable sends, as a builder that places its arguments beside the SQL. The
 * schema is the only identifier spliced in, and `quoteSchema` has checked it. The lifecycle
 * transitions are SQL functions (see migrations/, and schema.sql for today's bodies), so each is
 * one round trip.
 */
export function buildStatements(schema: string) {
  const s = quoteSchema(schema);
  const snapshotColumns = `id, name, queue, state, attempts, params, headers, result, result is null as no_result, error, parent_task_id, created_at, updated_at`;
  const q = (text: string, values: unknown[]): Statement => ({ text, values });
  return {
    channels: channelsOf(schema),
    // Flow limits and schedules (issue 15).
    ...flowStatements(s, q),

    // Producers.
    spawn: (r: SpawnRow) => q(`select * from ${s}.spawn_task($1, $2, $3::json, $4::json, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12)`, [
      r.queue, r.name, r.params, r.headers, r.maxAttempts, r.retry, r.cancellation, r.idempotencyKey, r.delayMs, r.runAt,
      r.priority, r.concurrencyKey,
    ]),
    /** Never waits for another transaction: a row per spawn, `outcome` 'ok', 'contended' or 'deferred'. */
    spawnBatch: (rows: SpawnRow[]) => q(`select * from ${s}.spawn_batch_nowait($1::json)`, [encodeSpawns(rows)]),
    emit: (queue: string, eventName: string, payload: string) =>
      q(`select ${s}.emit_event($1, $2, $3::json) as woken`, [queue, eventName, payload]),

    // The worker and the task context; every write is fenced on its run.
    claim: (a: ClaimArgs) => q(`select * from ${s}.claim_tasks($1, $2, $3, $4, $5, $6)`, [
      a.queues, a.workerId, a.limit, a.leaseMs, a.sweep, a.firstQueue ?? null,
    ]),
    /** Outcomes: 'ok', 'cancelled', 'lost', and for a checkpoint 'exists' (one was committed first; it stays). */
    writeBatch: (workerId: string, writes: WorkerWrite[]) =>
      q(`select * from ${s}.write_batch($1, $2::json)`, [workerId, encodeWrites(writes)]),
    heartbeat: (f: RunFence, leaseMs: number) =>
      q(`select ${s}.heartbeat($1, $2, $3, $4, $5) as outcome`, [f.taskId, f.runId, f.workerId, f.epoch, leaseMs]),
    fail: (f: RunFence, error: string, final: boolean) =>
      q(`select ${s}.fail_run($1, $2, $3, $4, $5::jsonb, $6) as outcome`, [f.taskId, f.runId, f.workerId, f.epoch, error, final]),
    /** `firstStart`: the claim was the task's first start (ClaimedRun.firstStart); it is undone. */
    defer: (f: RunFence, delayMs: number, firstStart: boolean) =>
      q(`select ${s}.defer_run($1, $2, $3, $4, $5, $6) as outcome`, [f.taskId, f.runId, f.workerId, f.epoch, delayMs, firstStart]),
    sleep: (f: RunFence, a: { key: string; wakeAt: Date | null; durationMs: number | null; attempt: number; leaseMs: number }) =>
      q(`select * from ${s}.sleep_until($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
        f.taskId, f.runId, f.workerId, f.epoch, a.key, a.wakeAt, a.durationMs, a.attempt, a.leaseMs,
      ]),
    awaitEvent: (f: RunFence, a: { queue: string; eventName: string; key: string; timeoutMs: number | null; attempt: number; leaseMs: number }) =>
      q(`select * from ${s}.await_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [
        f.taskId, f.runId, f.workerId, f.epoch, a.queue, a.eventName, a.key, a.timeoutMs, a.attempt, a.leaseMs,
      ]),
    emitFromTask: (f: RunFence, a: { key: string; queue: string; eventName: string; payload: string; attempt: number; leaseMs: number }) =>
      q(`select ${s}.emit_from_task($1, $2, $3, $4, $5, $6, $7, $8::json, $9, $10) as outcome`, [
        f.taskId, f.runId, f.workerId, f.epoch, a.key, a.queue, a.eventName, a.payload, a.attempt, a.leaseMs,
      ]),
    /** ctx.spawn: the child and the parent's checkpoint of its handle (outcome 'checkpoint' and the handle, or the fence's). */
    spawnChild: (f: RunFence, a: { key: string; row: SpawnRow; attempt: number; leaseMs: number }) =>
      q(`select * from ${s}.spawn_child($1, $2, $3, $4, $5, $6, $7, $8::json, $9::json, $10, $11::jsonb, $12::jsonb, $13, $14, $15, $16, $17, $18, $19)`, [
        f.taskId, f.runId, f.workerId, f.epoch, a.key, a.row.queue, a.row.name, a.row.params, a.row.headers, a.row.maxAttempts,
        a.row.retry, a.row.cancellation, a.row.idempotencyKey, a.row.delayMs, a.row.runAt, a.attempt, a.leaseMs,
        a.row.priority, a.row.concurrencyKey,
      ]),
    /** ctx.join*: outcome 'checkpoint' (the join's outcome), 'suspended', 'not_child' (the id) or the fence's. */
    joinTasks: (f: RunFence, a: { key: string; children: string[]; any: boolean; timeoutMs: number | null; attempt: number; leaseMs: number }) =>
      q(`select * from ${s}.join_tasks($1, $2, $3, $4, $5, $6::uuid[], $7, $8, $9, $10)`, [
        f.taskId, f.runId, f.workerId, f.epoch, a.key, a.children, a.any, a.timeoutMs, a.attempt, a.leaseMs,
      ]),
    /** A committed checkpoint (`is_null`: stored as SQL NULL, i.e. undefined). */
    readCheckpoint: (taskId: string, name: string) =>
      q(`select value, value is null as is_null from ${s}.checkpoints where task_id = $1 and name = $2`, [taskId, name]),
    /** Puts back the runs `running` for this worker that are not in `keep` (after a claim whose answer was lost). */
    releaseRuns: (workerId: string, keep: string[]) =>
      q(`select ${s}.release_runs($1, $2::uuid[]) as released`, [workerId, keep]),

    // Management and reads.
    cancel: (taskId: string) => q(`select ${s}.cancel_task($1) as outcome`, [taskId]),
    retry: (taskId: string) => q(`select ${s}.retry_task($1) as outcome`, [taskId]),
    getTask: (taskId: string) => q(`select ${snapshotColumns} from ${s}.tasks where id = $1`, [taskId]),
    taskExists: (taskId: string) => q(`select 1 from ${s}.tasks where id = $1`, [taskId]),
    listTasks: (a: ListTasksArgs) => q(`
      select ${snapshotColumns} from ${s}.tasks
      where ($1::text is null or queue = $1) and ($2::text is null or state = $2)
        and ($3::text is null or name = $3)
        and ($4::uuid is null or (created_at, id) < (select created_at, id from ${s}.tasks where id = $4))
        and ($6::uuid is null or parent_task_id = $6)
      order by created_at desc, id desc
      limit $5`, [a.queue, a.state, a.name, a.cursor, a.limit, a.parentTaskId]),
    /**
     * Up to `limit` tasks terminal for `olderThanMs` (with their runs, checkpoints and waits), and
     * up to `limit` events: placeholders no wait needs, and events emitted before `olderThanMs`.
     */
    cleanup: (a: { queue: string | null; olderThanMs: number; limit: number }) => q(`
      with doomed as (
        select id from ${s}.tasks
        where finished_at <= ${s}.now() - $2 * interval '1 millisecond' and ($1::text is null or queue = $1)
        order by finished_at
        limit $3
        for update skip locked
      ), deleted as (
        delete from ${s}.tasks t using doomed where t.id = doomed.id returning 1
      ), doomed_events as (
        select e.queue, e.name from ${s}.events e
        where ($1::text is null or e.queue = $1)
          and (e.emitted_at <= ${s}.now() - $2 * interval '1 millisecond'
            or (e.emitted_at is null
              and not exists (select 1 from ${s}.waits w where w.queue = e.queue and w.event_name = e.name)))
        limit $3
        for update skip locked
      ), deleted_events as (
        delete from ${s}.events e using doomed_events d where e.queue = d.queue and e.name = d.name returning 1
      )
      select (select count(*)::integer from deleted) as count,
        (select count(*)::integer from deleted_events) as events`, [a.queue, a.olderThanMs, a.limit]),
    createQueue: (name: string) => q(`insert into ${s}.queues (name, created_at) values ($1, ${s}.now()) on conflict do nothing`, [name]),
    dropQueue: (name: string) => q(`
      with tasks as (delete from ${s}.tasks where queue = $1 returning 1),
           events as (delete from ${s}.events where queue = $1 returning 1)
      delete from ${s}.queues where name = $1 and (select count(*) from tasks) >= 0
        and (select count(*) from events) >= 0`, [name]),
    listQueues: () => q(`select name from ${s}.queues order by name`, []),

    /** Runs of these queues that are running or due now (the testing kit's `drain` waits for none). */
    countBusy: (queues: string[]) => q(`
      select count(*)::integer as count from ${s}.runs
      where queue = any($1) and (state = 'running' or (state in ('pending', 'sleeping') and available_at <= ${s}.now()))`, [queues]),
    /** Wakes every worker of every queue, as if each had new work (after the test clock moved). */
    wakeAllQueues: () => q(`select count(pg_notify($1, name))::integer as count from ${s}.queues`, [channelsOf(schema).wakeup]),

    /**
     * Replaces the schema's `now()` by one that adds the offset in its `test_clock` table (once;
     * later calls change nothing). Only tests do this, after the migrations ran: a production
     * schema's `now()` is the plain clock. `advanceTestClock` needs it first.
     */
    installTestClock: () => q(`
      do $install$
      begin
        perform pg_catalog.pg_advisory_xact_lock('${s}.now()'::regprocedure::oid::bigint);
        if (select p.prosrc from pg_catalog.pg_proc p where p.oid = '${s}.now()'::regprocedure) not like '%test_clock%' then
          create table if not exists ${s}.test_clock (
            id boolean primary key default true check (id),
            offset_ms double precision not null
          );
          create or replace function ${s}.now() returns timestamptz language sql volatile
          set search_path = pg_catalog, pg_temp as $clock$
            select clock_timestamp() + coalesce((select offset_ms from ${s}.test_clock), 0) * interval '1 millisecond'
          $clock$;
        end if;
      end $install$`, []),
    /** Moves the test clock forward (see `installTestClock`). */
    advanceTestClock: (ms: number) => q(`
      insert into ${s}.test_clock (id, offset_ms) values (true, $1)
      on conflict (id) do update set offset_ms = ${s}.test_clock.offset_ms + excluded.offset_ms`, [ms]),
  } as const;
}

export type Statements = ReturnType<typeof buildStatements>;
