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
  const workerLockClass = lockClassOf(`${schema}.workers`);
  /** The key of a worker's lock in `workerLockClass`, from the SQL expression of its id. */
  const workerLockKey = (workerId: string) => `(pg_catalog.hashtext(${workerId}) & 2147483647)`;
  /** The worker's lock (`holdWorker`) is held by some session of this database. */
  const workerHeld = (workerId: string) => `${workerLockKey(workerId)}::oid in (
      select l.objid from pg_catalog.pg_locks l where l.locktype = 'advisory' and l.classid = ${workerLockClass}::oid
        and l.objsubid = 2 and l.granted and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database()))`;
  const snapshotColumns = `id, name, queue, state, attempts, params, headers, result, result is null as no_result, error, parent_task_id, progress, created_at, updated_at`;
  const q = (text: string, values: unknown[]): Statement => ({ text, values });
  /**
   * Snapshots with what `waitingFor` needs (TaskSnapshot.waitingFor, see client/waiting-for.ts):
   * `page` selects the tasks rows (filter, order and limit there, so the planner keeps its index
   * order); each is then joined, set-based, with the database clock (once per statement), its
   * live run's wait if it is pending or sleeping (w_*), the children its join still waits for,
   * and whether a live worker polls its queue. The rest of the statement sees the rows as `t`.
   *
   * Flow limits (w_held_by, w_held_until), read once per flow group among the page's pending and
   * due sleeping tasks whose name has a `flow_limits` row (not once per task), as the claim counts:
   * - `held_concurrency`, per (queue, name, concurrency key): the group's running runs with an
   *   unexpired lease against `concurrency`, counted in one pass over the running runs of the
   *   limited queues (runs_running; as many as the workers run at once, not the backlog);
   * - `held_rate`, per (queue, name): the starts in `flow_starts` within the last `rate_per_ms`
   *   (flow_starts_window; a row per claim, `n` starts each), against `rate_max`; the window lets
   *   one more start when enough of its oldest starts have left it (count - max + 1 of them, as
   *   the claim computes it).
   * Only a due task (its run's available_at has come) is held; concurrency wins over a rate when
   * both are full (the rate window's reopening would not start it).
   */
  const withWaiting = (page: string, select: string, rest = '') => `
    with page as materialized (${page}),
    clock as materialized (select ${s}.now() as w_now),
    polled as (select distinct h.queue as w_queue from ${s}.worker_heartbeats h, clock
      where h.expires_at > clock.w_now or ${workerHeld('h.worker_id')}),
    open_children as (
      select p.id as w_task_id, array_agg(c.id::text order by c.n) as w_children
      from page p join ${s}.runs r on r.id = p.run_id and r.join_children is not null
        cross join lateral unnest(r.join_children) with ordinality c(id, n)
        join ${s}.tasks k on k.id = c.id and k.state in ('pending', 'running', 'sleeping')
      where p.state = 'sleeping'
      group by p.id
    ),
    flow_groups as materialized (
      select distinct p.queue, p.name, p.concurrency_key, l.concurrency, l.rate_max, l.rate_per_ms
      from page p join ${s}.flow_limits l on l.queue = p.queue and l.name = p.name
      -- A sleeping task is held only once its wait is over (its run due): most never are.
      where p.state = 'pending' or (p.state = 'sleeping'
        and exists (select 1 from ${s}.runs r, clock where r.id = p.run_id and r.available_at <= clock.w_now))
    ),
    held_concurrency as (
      select k.queue as c_queue, k.name as c_name, k.concurrency_key as c_key
      from ${s}.runs r join ${s}.tasks k on k.id = r.task_id cross join clock
      where r.queue in (select g.queue from flow_groups g where g.concurrency is not null) and r.state = 'running'
        and r.lease_expires_at > clock.w_now
        and (k.queue, k.name) in (select g.queue, g.name from flow_groups g where g.concurrency is not null)
      group by k.queue, k.name, k.concurrency_key
      having count(*) >= min((select l.concurrency from ${s}.flow_limits l where l.queue = k.queue and l.name = k.name))
    ),
    held_rate as (
      select g.queue as r_queue, g.name as r_name, opens.at + g.rate_per_ms * interval '1 millisecond' as r_until
      from (select distinct queue, name, rate_max, rate_per_ms from flow_groups where rate_max is not null) g
        cross join clock
        cross join lateral (select coalesce(sum(fs.n), 0) as n from ${s}.flow_starts fs
          where fs.queue = g.queue and fs.name = g.name and fs.started_at > clock.w_now - g.rate_per_ms * interval '1 millisecond') started
        cross join lateral (select w.started_at as at from (select fs.started_at, sum(fs.n) over (order by fs.started_at) as upto
            from ${s}.flow_starts fs
            where fs.queue = g.queue and fs.name = g.name and fs.started_at > clock.w_now - g.rate_per_ms * interval '1 millisecond') w
          where w.upto >= started.n - g.rate_max + 1 order by w.started_at limit 1) opens
      where started.n >= g.rate_max
    )
    select ${select},
      w_available_at > w_now as w_later, nullif(w_available_at, 'infinity') as w_until, w_event, w_join, w_join_deadline,
      w_children, w_queue is not null as w_polled,
      -- 'concurrency' or 'rateLimit' when a limit holds this due task back (and, for a rate
      -- limit, when its window lets it start).
      case when w_available_at > w_now then null when c_queue is not null then 'concurrency'
        when r_queue is not null then 'rateLimit' end as w_held_by,
      case when w_available_at <= w_now and c_queue is null then r_until end as w_held_until
    from page t cross join clock
      left join lateral (select r.available_at as w_available_at, r.wake_event as w_event,
          r.join_children is not null as w_join, r.join_deadline as w_join_deadline
        from ${s}.runs r where r.id = t.run_id and t.state in ('pending', 'sleeping')
        limit 1) w on true -- a key lookup per row, never a scan of all runs
      left join open_children oc on oc.w_task_id = t.id
      left join polled pq on pq.w_queue = t.queue
      left join held_concurrency hc on hc.c_queue = t.queue and hc.c_name = t.name
        and hc.c_key is not distinct from t.concurrency_key
      left join held_rate hr on hr.r_queue = t.queue and hr.r_name = t.name
    ${rest}`;
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
    getTask: (taskId: string) => q(withWaiting(`select * from ${s}.tasks where id = $1`, snapshotColumns), [taskId]),
    /** The snapshots of these tasks (the watchers' poll: one statement for every watched id). */
    getTasks: (taskIds: string[]) => q(withWaiting(`select * from ${s}.tasks where id = any($1::uuid[])`, snapshotColumns), [taskIds]),
    /** Registers, keeps alive and unregisters a process's watched ids (see `watch_refresh`). */
    watchRefresh: (watcher: string, add: string[], remove: string[], ttlMs: number) =>
      q(`select ${s}.watch_refresh($1, $2::uuid[], $3::uuid[], $4)`, [watcher, add, remove, ttlMs]),
    /** Sets `last_execution` of each task, returning the values replaced (see `swap_last_executions`). */
    swapLastExecutions: (items: { taskId: string; value: string }[]) =>
      q(`select * from ${s}.swap_last_executions($1::json)`, [JSON.stringify(items.map((i) => ({ task_id: i.taskId, value: i.value })))]),
    /** Counts per queue and state, and the oldest due pending run (see `queue_stats`). */
    queueStats: (queue: string | null) => q(`select * from ${s}.queue_stats($1)`, [queue]),
    taskExists: (taskId: string) => q(`select 1 from ${s}.tasks where id = $1`, [taskId]),
    listTasks: (a: ListTasksArgs) => q(withWaiting(`
        select * from ${s}.tasks
        where ($1::text is null or queue = $1) and ($2::text is null or state = $2)
          and ($3::text is null or name = $3)
          and ($4::uuid is null or (created_at, id) < (select created_at, id from ${s}.tasks where id = $4))
          and ($6::uuid is null or parent_task_id = $6)
        order by created_at desc, id desc
        limit $5`, snapshotColumns, 'order by created_at desc, id desc'), [a.queue, a.state, a.name, a.cursor, a.limit, a.parentTaskId]),
    /**
     * Up to `limit` tasks terminal for `olderThanMs` (with their runs, checkpoints and waits), and
     * up to `limit` events: placeholders no wait needs, and events emitted before `olderThanMs`.
     */
    cleanup: (a: { queue: string | null; olderThanMs: number; limit: number }) => q(`
      with cutoff as (select ${s}.now() - $2 * interval '1 millisecond' as at), doomed as (
        -- Through tasks_created_at (a task finished before the cutoff was created before it):
        -- finished_at has no index, so that a completion can update its task in place (HOT).
        select t.id from ${s}.tasks t, cutoff
        where t.created_at <= cutoff.at and t.finished_at <= cutoff.at and ($1::text is null or t.queue = $1)
        order by t.created_at
        limit $3
        for update of t skip locked
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

    // Operators' reads (issue 17): one task in full, and the workers' heartbeats.
    /** A task's snapshot with its runs, checkpoints (in commit order), event waits and first children, in one snapshot. */
    inspectTask: (taskId: string, childLimit: number) => q(withWaiting(`select * from ${s}.tasks where id = $1`, `${snapshotColumns},
        (select coalesce(json_agg(json_build_object('runId', r.id, 'attempt', r.attempt, 'state', r.state,
            'workerId', r.worker_id, 'createdAt', r.created_at, 'availableAt', nullif(r.available_at, 'infinity'),
            'startedAt', r.started_at, 'finishedAt', r.finished_at, 'leaseExpiresAt', r.lease_expires_at,
            'claims', r.claim_epoch, 'error', r.error) order by r.attempt), '[]')
          from ${s}.runs r where r.task_id = t.id) as i_runs,
        (select coalesce(json_agg(json_build_array(cp.name, cp.value, cp.value is null, cp.attempt, cp.created_at)
            order by cp.created_at, cp.attempt, cp.name), '[]')
          from ${s}.checkpoints cp where cp.task_id = t.id) as i_checkpoints,
        (select coalesce(json_agg(json_build_object('stepName', wt.step_name, 'queue', wt.queue, 'eventName', wt.event_name,
            'timeoutAt', wt.timeout_at, 'createdAt', wt.created_at, 'emittedAt', e.emitted_at) order by wt.created_at, wt.step_name), '[]')
          from ${s}.waits wt left join ${s}.events e on e.queue = wt.queue and e.name = wt.event_name
          where wt.task_id = t.id) as i_waits,
        (select count(*)::integer from ${s}.tasks k where k.parent_task_id = t.id) as i_child_count,
        (select coalesce(json_agg(json_build_object('taskId', k.id, 'name', k.name, 'queue', k.queue, 'state', k.state,
            'attempts', k.attempts, 'createdAt', k.created_at, 'finishedAt', k.finished_at) order by k.created_at, k.id), '[]')
          from (select * from ${s}.tasks k where k.parent_task_id = t.id order by k.created_at, k.id limit $2) k) as i_children`),
    [taskId, childLimit]),
    /**
     * The worker polls these queues: a row per queue, written when it is new or changed (its
     * concurrency, its handlers running), or to renew `expires_at` (`ttlMs` from now) while the
     * worker's lock (`holdWorker`) is not held: an idle worker whose LISTEN connection holds it
     * writes nothing. Also forgets workers gone for an hour, and reads the next schedule tick.
     */
    workerBeat: (a: { workerId: string; queues: string[]; concurrency: number; inFlight: number; ttlMs: number }) => q(`
      with clock as (select ${s}.now() as now), held as materialized (select ${workerHeld('$2')} as held),
      added as (
        insert into ${s}.worker_heartbeats (queue, worker_id, concurrency, in_flight, seen_at, expires_at)
        select u.queue, $2, $3, $4, clock.now, clock.now + $5 * interval '1 millisecond' from unnest($1::text[]) u(queue), clock
        where not exists (select 1 from ${s}.worker_heartbeats h where h.queue = u.queue and h.worker_id = $2)
        on conflict (queue, worker_id) do nothing
        returning 1
      ), renewed as (
        update ${s}.worker_heartbeats h set concurrency = $3, in_flight = $4, seen_at = clock.now,
          expires_at = clock.now + $5 * interval '1 millisecond'
        from clock, held
        where h.worker_id = $2 and h.queue = any($1::text[]) and (h.concurrency <> $3 or h.in_flight <> $4 or not held.held)
        returning 1
      ), forgotten as (
        -- Skipping rows another worker is deleting: two beats never wait for each other.
        delete from ${s}.worker_heartbeats h where (h.queue, h.worker_id) in (
          select o.queue, o.worker_id from ${s}.worker_heartbeats o, clock
          where o.expires_at < clock.now - interval '1 hour' and o.worker_id <> $2 and not ${workerHeld('o.worker_id')}
          for update of o skip locked)
        returning 1
      )
      -- And the next tick of these queues' schedules: the worker's schedule ticker learns of one
      -- made by another process from the beat (it polls for them no more itself).
      select (select count(*) from added)::integer + (select count(*) from renewed)::integer as beats,
        (select count(*) from forgotten)::integer as forgotten,
        (select min(sc.next_run_at) from ${s}.schedules sc where sc.queue = any($1::text[])) as next_run_at,
        (select clock.now from clock) as db_now, (select held.held from held) as held`,
    [a.queues, a.workerId, a.concurrency, a.inFlight, a.ttlMs]),
    /**
     * The worker's liveness without a write: a session advisory lock, taken on the LISTEN
     * connection (again after each reconnect, and when a beat finds nobody holding it) and
     * released when the worker stops or its session ends, a killed process's at once. `false`
     * when another session holds it. The session's TCP keep-alive is shortened too, so that the
     * server ends a session whose client vanished (and frees its lock) within about 25 s
     * instead of the usual two hours.
     */
    holdWorker: (workerId: string) => q(`select pg_catalog.set_config('tcp_keepalives_idle', '10', false),
        pg_catalog.set_config('tcp_keepalives_interval', '5', false), pg_catalog.set_config('tcp_keepalives_count', '3', false),
        -- Once per session: advisory locks stack, and one unlock (releaseWorker) must let go.
        case when exists (select 1 from pg_catalog.pg_locks l where l.locktype = 'advisory' and l.pid = pg_catalog.pg_backend_pid()
            and l.classid = ${workerLockClass}::oid and l.objid = ${workerLockKey('$1')}::oid and l.objsubid = 2 and l.granted)
          then true else pg_catalog.pg_try_advisory_lock(${workerLockClass}, ${workerLockKey('$1')}) end as held`, [workerId]),
    releaseWorker: (workerId: string) =>
      q(`select pg_catalog.pg_advisory_unlock(${workerLockClass}, ${workerLockKey('$1')}) as released`, [workerId]),
    /** A stopping worker no longer polls these queues. */
    workerGone: (workerId: string, queues: string[]) =>
      q(`delete from ${s}.worker_heartbeats where worker_id = $1 and queue = any($2::text[])`, [workerId, queues]),

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

/** A stable 31-bit key for `name` (FNV-1a): the first key of a two-key advisory lock. */
function lockClassOf(name: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) hash = Math.imul(hash ^ byte, 0x01000193);
  return (hash >>> 0) & 0x7fffffff;
}
