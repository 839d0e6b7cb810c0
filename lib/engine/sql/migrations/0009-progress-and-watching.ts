import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { channelsOf } from '../channels.js';
import { quoteSchema } from '../schema-name.js';
import { PINNED_SEARCH_PATH, pinSearchPath } from './0004-execution-fencing.js';
import { DurableChildTasks1764000000006 } from './0006-child-tasks.js';

/**
 * Progress, watching and stats (issue 16).
 *
 * - `tasks.progress`: the last `ctx.setProgress` value; `write_batch` takes a `progress` kind,
 *   fenced like a checkpoint. A batch of nothing but progress commits with
 *   `synchronous_commit = off`: it does not wait for its WAL flush (PostgreSQL's WAL writer
 *   flushes it within three `wal_writer_delay`s); a server crash in that window loses at most
 *   that progress, never a checkpoint or a completion.
 * - `watches` (unlogged: a server crash empties it, and watchers register again at their next
 *   poll): the task ids some process watches now, with the time after which a row nobody
 *   refreshed is ignored and deleted. Statement-level triggers on `tasks` NOTIFY `<schema>_watch`
 *   with the task id when a watched task's state, attempts or progress changed. With nothing
 *   watched the trigger reads one empty table per statement and stops.
 * - `task_counts`: the number of tasks per queue and state as deltas, appended by the same
 *   statement-level triggers (one row per queue and state a statement changed, never an update
 *   of a shared row, so no transaction waits for another), folded into one row per queue and
 *   state by `stats_compact` (called by `client.stats` and, about once per thousand statements,
 *   by the trigger itself). `client.stats` sums it: its cost depends on the number of queues,
 *   not of tasks.
 * - `tasks.last_execution`: opaque text an observer keeps about the task's latest execution
 *   (telemetry: the W3C trace context of its span, so that the next execution, in any process,
 *   links to it). `swap_last_executions` sets it for many tasks in one statement and returns
 *   the values it replaced; it is not fenced (it is not the task's data) and commits without
 *   waiting for its WAL flush.
 */
export class DurableProgressAndWatching1764000000009 implements MigrationInterface {
  readonly name = 'DurableProgressAndWatching1764000000009';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
alter table ${s}.tasks add column if not exists progress json;
alter table ${s}.tasks add column if not exists last_execution text;
create unlogged table if not exists ${s}.watches (
  task_id    uuid not null,
  watcher    uuid not null,
  expires_at timestamptz not null,
  primary key (task_id, watcher)
);
create table if not exists ${s}.task_counts (
  queue text not null,
  state text not null,
  n     bigint not null
);
${functionsSql(s, this.schema)}
${pinSearchPath(this.schema)}
drop trigger if exists tasks_counted_insert on ${s}.tasks;
drop trigger if exists tasks_counted_update on ${s}.tasks;
drop trigger if exists tasks_counted_delete on ${s}.tasks;
drop trigger if exists tasks_counted_truncate on ${s}.tasks;
create trigger tasks_counted_insert after insert on ${s}.tasks
  referencing new table as new_rows for each statement execute function ${s}._tasks_inserted();
create trigger tasks_counted_update after update on ${s}.tasks
  referencing old table as old_rows new table as new_rows for each statement execute function ${s}._tasks_updated();
create trigger tasks_counted_delete after delete on ${s}.tasks
  referencing old table as old_rows for each statement execute function ${s}._tasks_deleted();
create trigger tasks_counted_truncate after truncate on ${s}.tasks
  for each statement execute function ${s}._tasks_truncated();
-- The triggers exist (and lock out writers) before the existing tasks are counted.
delete from ${s}.task_counts;
insert into ${s}.task_counts (queue, state, n) select queue, state, count(*) from ${s}.tasks group by queue, state;
`);
  }

  /** Back to 0006's `write_batch` (0006 runs again: it is idempotent), without the new objects. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
drop trigger if exists tasks_counted_insert on ${s}.tasks;
drop trigger if exists tasks_counted_update on ${s}.tasks;
drop trigger if exists tasks_counted_delete on ${s}.tasks;
drop trigger if exists tasks_counted_truncate on ${s}.tasks;
drop function if exists ${s}._tasks_inserted(), ${s}._tasks_updated(), ${s}._tasks_deleted(), ${s}._tasks_truncated(),
  ${s}.swap_last_executions(json), ${s}.stats_compact(), ${s}.queue_stats(text), ${s}.watch_refresh(uuid, uuid[], uuid[], double precision);
drop table if exists ${s}.watches, ${s}.task_counts;`);
    await new DurableChildTasks1764000000006(this.schema).up(runner);
    await runner.query(`alter table ${s}.tasks drop column if exists progress, drop column if exists last_execution;`);
  }
}

const [PENDING, RUNNING, SLEEPING, COMPLETED, FAILED, CANCELLED] = TASK_STATES.map((state) => `'${state}'`);
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;

function functionsSql(s: string, schema: string): string {
  const { watch } = channelsOf(schema);
  return `
-- Folds the deltas into one row per queue and state. Never waits: only one fold runs at a time
-- (the others skip), and nothing else updates or deletes these rows.
create or replace function ${s}.stats_compact() returns void language plpgsql ${SET_PATH} as $$
begin
  if not pg_catalog.pg_try_advisory_xact_lock('${s}.task_counts'::regclass::oid::bigint) then return; end if;
  with gone as (delete from ${s}.task_counts returning queue, state, n)
  insert into ${s}.task_counts (queue, state, n)
  select queue, state, sum(n) from gone group by queue, state having sum(n) <> 0;
end $$;

-- Per queue (one queue, or every queue that has tasks or a queues row): the count of each state,
-- and how long the oldest runnable pending run has been due (null when none is).
create or replace function ${s}.queue_stats(p_queue text)
returns table (queue text, pending bigint, running bigint, sleeping bigint, completed bigint, failed bigint,
  cancelled bigint, oldest_pending_at timestamptz, db_now timestamptz)
language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
begin
  perform ${s}.stats_compact();
  return query
  with counts as (
    select c.queue, c.state, sum(c.n)::bigint as n from ${s}.task_counts c
    where p_queue is null or c.queue = p_queue group by c.queue, c.state
  ), names as (
    select c.queue from counts c
    union select q.name from ${s}.queues q where p_queue is null or q.name = p_queue
    union select p_queue where p_queue is not null
  )
  select n.queue,
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${PENDING}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${RUNNING}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${SLEEPING}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${COMPLETED}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${FAILED}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${CANCELLED}), 0),
    -- runs_claimable, in due order: the first pending run that is due.
    (select r.available_at from ${s}.runs r
      where r.queue = n.queue and r.state in (${PENDING}, ${SLEEPING}) and r.state = ${PENDING} and r.available_at <= v_now
      order by r.available_at limit 1),
    v_now
  from names n order by n.queue;
end $$;

-- The counting half of the triggers: one delta row per queue and state a statement changed.
create or replace function ${s}._tasks_inserted() returns trigger language plpgsql ${SET_PATH} as $$
begin
  insert into ${s}.task_counts (queue, state, n) select queue, state, count(*) from new_rows group by queue, state;
  perform ${s}.stats_compact() where pg_catalog.random() < 0.001;
  return null;
end $$;

create or replace function ${s}._tasks_deleted() returns trigger language plpgsql ${SET_PATH} as $$
begin
  insert into ${s}.task_counts (queue, state, n) select queue, state, -count(*) from old_rows group by queue, state;
  perform ${s}.stats_compact() where pg_catalog.random() < 0.001;
  return null;
end $$;

create or replace function ${s}._tasks_truncated() returns trigger language plpgsql ${SET_PATH} as $$
begin
  delete from ${s}.task_counts;
  return null;
end $$;

-- Counts the state changes and tells the watchers of the watched tasks among the rows.
create or replace function ${s}._tasks_updated() returns trigger language plpgsql ${SET_PATH} as $$
begin
  insert into ${s}.task_counts (queue, state, n)
  select d.queue, d.state, sum(d.n) from (
    select o.queue, o.state, -1 as n from old_rows o
    union all select w.queue, w.state, 1 from new_rows w
  ) d group by d.queue, d.state having sum(d.n) <> 0;
  perform ${s}.stats_compact() where pg_catalog.random() < 0.001;
  if exists (select 1 from ${s}.watches) then
    perform pg_catalog.pg_notify('${watch}', w.task_id::text)
    from (
      select distinct n.id as task_id from new_rows n
      join old_rows o on o.id = n.id
      where (n.state, n.attempts) is distinct from (o.state, o.attempts)
        or n.progress::text is distinct from o.progress::text
    ) w
    where exists (select 1 from ${s}.watches x where x.task_id = w.task_id);
  end if;
  return null;
end $$;

-- A watching process registers (p_add), keeps alive (every id it still watches, also p_add)
-- and unregisters (p_remove) its task ids in one statement; rows not kept alive expire after
-- p_ttl_ms (a process that died), and expired rows of anyone are deleted on the way.
create or replace function ${s}.watch_refresh(p_watcher uuid, p_add uuid[], p_remove uuid[], p_ttl_ms double precision)
returns void language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
begin
  delete from ${s}.watches w
  where (w.watcher = p_watcher and w.task_id = any(p_remove)) or w.expires_at < v_now;
  insert into ${s}.watches (task_id, watcher, expires_at)
  select distinct t, p_watcher, v_now + p_ttl_ms * interval '1 millisecond' from pg_catalog.unnest(p_add) t
  on conflict (task_id, watcher) do update set expires_at = excluded.expires_at;
end $$;

-- p_items: [{ "task_id", "value" }, ...], one per task. Returns each task's previous value.
create or replace function ${s}.swap_last_executions(p_items json)
returns table (task_id uuid, previous text) language plpgsql ${SET_PATH} as $$
begin
  perform pg_catalog.set_config('synchronous_commit', 'off', true);
  return query
  with items as (
    select (e->>'task_id')::uuid as task_id, e->>'value' as value from json_array_elements(p_items) e
  ), locked as (
    -- In task order, as every transition locks; the values as they were before this statement.
    select t.id, t.last_execution from ${s}.tasks t where t.id in (select items.task_id from items)
    order by t.id for update of t
  ), swapped as (
    update ${s}.tasks t set last_execution = items.value from items where t.id = items.task_id
    returning 1
  )
  select l.id, l.last_execution from locked l;
end $$;

${writeBatchSql(s)}
`;
}

/**
 * `lean` (migration 0013): the fence and the lease arithmetic written inline (a function with a
 * pinned search_path is never inlined: each call per row costs a function call), and a
 * checkpoint renews its run's lease only when the last renewal is older than a tenth of the
 * lease or a second, whichever is shorter (not an update of \`runs\` per step).
 */
export function writeBatchSql(s: string, lean = false): string {
  const fence = lean
    ? `case when t.state = ${CANCELLED} then 'cancelled'
        when r.state = ${RUNNING} and r.worker_id = p_worker and r.claim_epoch = o.epoch and r.lease_expires_at > v_now then 'ok'
        else 'lost' end`
    : `${s}._fence_outcome(t.state, r.state, r.worker_id, r.claim_epoch, r.lease_expires_at, p_worker, o.epoch, v_now)`;
  const lease = lean
    ? `
      case when l.lease_ms is not null then least(greatest(l.lease_ms, 0), 3.15e12) * interval '1 millisecond' end as lease,`
    : 'l.lease_ms,';
  const renewed = lean
    ? `-- The batched form of _renew_lease, when the lease was renewed longer ago than
    -- min(a tenth of it, 1 s): a lease set a moment ago is not written again.
    update ${s}.runs r set lease_expires_at = v_now + ok.lease
    from ok where ok.kind = 'checkpoint' and r.id = ok.run_id
      and r.lease_expires_at < v_now + ok.lease - least(ok.lease / 10, interval '1 second')`
    : `-- The batched form of _renew_lease.
    update ${s}.runs r set lease_expires_at = v_now + ${s}._ms(ok.lease_ms)
    from ok where ok.kind = 'checkpoint' and r.id = ok.run_id`;
  return `
-- p_ops: [{ "kind": "checkpoint" | "complete" | "progress", "task_id", "run_id", "epoch", "name",
-- "value", "undefined", "attempt", "lease_ms" }, ...], at most one per run. Returns the index
-- (from 1) and outcome of each operation whose task and run exist ('lost' for the others):
-- 'ok', 'cancelled' or 'lost' as the fence says; for a checkpoint also 'exists': one is
-- committed under that name, and it stays (first writer wins). A progress write replaces the
-- task's progress; a batch of nothing but progress commits without waiting for its WAL flush.
create or replace function ${s}.write_batch(p_worker text, p_ops json)
returns table (i integer, outcome text) language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
begin
  if not exists (select 1 from json_array_elements(p_ops) e where e->>'kind' <> 'progress') then
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
  end if;
  return query
  with ops as (
    select e.i::integer as i, x.*
    from json_array_elements(p_ops) with ordinality as e(op, i),
      lateral json_to_record(e.op) as x(kind text, task_id uuid, run_id uuid, epoch integer, name text, value json,
        "undefined" boolean, attempt integer, lease_ms double precision)
  ), locked as (
    -- Task before run, in task order, as every transition locks. The fence is judged on the
    -- rows as locked (their latest versions). No CTE is joined with another below: the
    -- planner cannot size them, and a nested loop over two of them is quadratic.
    select o.*, cp.task_id is not null as stored,
      ${fence} as fence
    from ops o
    join ${s}.tasks t on t.id = o.task_id
    join ${s}.runs r on r.id = o.run_id and r.task_id = o.task_id
    left join ${s}.checkpoints cp on o.kind = 'checkpoint' and cp.task_id = o.task_id and cp.name = o.name
    order by t.id
    for update of t, r
  ), ok as (
    select l.kind, l.task_id, l.run_id, l.name, l.attempt, ${lease}
      case when l."undefined" then null else coalesce(l.value, 'null'::json) end as value
    from locked l where l.fence = 'ok' and not l.stored
  ), checkpoints as (
    -- First writer wins: a committed checkpoint may have been returned to user code already.
    insert into ${s}.checkpoints (task_id, name, value, attempt, created_at)
    select ok.task_id, ok.name, ok.value, ok.attempt, v_now from ok where ok.kind = 'checkpoint'
    on conflict (task_id, name) do nothing
    returning 1
  ), renewed as (
    ${renewed}
    returning 1
  ), completed_runs as (
    update ${s}.runs r set state = ${COMPLETED}, lease_expires_at = null, finished_at = v_now
    from ok where ok.kind = 'complete' and r.id = ok.run_id
    returning 1
  ), updated_tasks as (
    -- One update of tasks for both kinds: a row updated twice in one statement keeps one update.
    update ${s}.tasks t set
      state = case when ok.kind = 'complete' then ${COMPLETED} else t.state end,
      result = case when ok.kind = 'complete' then ok.value else t.result end,
      error = case when ok.kind = 'complete' then null else t.error end,
      cancel_at = case when ok.kind = 'complete' then null else t.cancel_at end,
      finished_at = case when ok.kind = 'complete' then v_now else t.finished_at end,
      progress = case when ok.kind = 'progress' then ok.value else t.progress end,
      updated_at = v_now
    from ok where ok.kind in ('complete', 'progress') and t.id = ok.task_id
    returning 1
  ), finished_waits as (
    delete from ${s}.waits w using ok where ok.kind = 'complete' and w.run_id = ok.run_id
    returning 1
  )
  select l.i, case when l.fence <> 'ok' then l.fence when l.stored then 'exists' else 'ok' end from locked l;
  -- The children this call completed tell their parents (a join may wait for them).
  perform ${s}._child_terminal(t.id, true, v_now)
  from ${s}.tasks t
  where t.id in (select (e->>'task_id')::uuid from json_array_elements(p_ops) e where e->>'kind' = 'complete')
    and t.parent_task_id is not null and t.state = ${COMPLETED} and t.finished_at = v_now
  order by t.parent_task_id;
end $$;
`;
}
