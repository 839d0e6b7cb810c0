import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { channelsOf } from '../channels.js';
import { quoteSchema } from '../schema-name.js';
import { PINNED_SEARCH_PATH, pinSearchPath } from './0004-execution-fencing.js';
import { DurableChildTasks1764000000006 } from './0006-child-tasks.js';

/**
 * cancel() of a parent no longer deadlocks with its children's terminal transitions (issue 14).
 *
 * A child's terminal transition (its completion in `write_batch`, its final failure, its
 * cancellation) holds the child's row, which every write of its run locks first, then locks its
 * parent's row in `_child_terminal`. `cancel_task` locked the parent, then each descendant: the
 * two could wait for each other, and PostgreSQL aborted one (40P01), possibly the child's
 * completion. One lock order cannot serve both (the child's side holds the child before it knows
 * it must tell the parent; the final failure in `_fail` holds the parent before its cascade), so
 * the cascade of `cancel_task` never waits for a lock while it holds one:
 * - it locks the task first, holding nothing yet;
 * - every further row (descendants, runs, waits, the task's own parent) it takes with SKIP
 *   LOCKED, and polls (1 ms pauses) for the rows it did not get;
 * - a busy child in its terminal transition (which takes the advisory lock `_ending_key(child)`
 *   in `_child_terminal` before it waits for the parent) is left out: it ends after the cancel
 *   commits;
 * - when the holder of another busy row waits for a lock of this transaction (or after 2 s of
 *   polling), the attempt gives way: lock_not_available rolls it back to its savepoint, which
 *   releases every lock it took and drops its notifications, and `cancel_task` tries again after
 *   a pause. After 100 attempts the last one waits for its locks as before.
 *
 * The mode is a transaction-local setting, `durable.cascade_nowait`, read by `_cancel`,
 * `_cancel_descendants` and `_child_terminal`; their other callers (the final failure in `_fail`,
 * the claim's sweep of cancellation policies, `write_batch`) keep waiting for their locks.
 */
export class DurableCancelLockOrder1764000000007 implements MigrationInterface {
  readonly name = 'DurableCancelLockOrder1764000000007';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
${functionsSql(quoteSchema(this.schema), this.schema)}
${pinSearchPath(this.schema)}
`);
  }

  /** Back to 0006's `_cancel`, `_cancel_descendants` and `_child_terminal` (0006 is idempotent) and 0002's `cancel_task`, without the helpers. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await new DurableChildTasks1764000000006(this.schema).up(runner);
    await runner.query(`
drop function if exists ${s}._give_way(integer, boolean), ${s}._holder_waits_for_me(xid), ${s}._is_ending(uuid),
  ${s}._ending_key(uuid);
create or replace function ${s}.cancel_task(p_task uuid)
returns text language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_state text;
begin
  select state into v_state from ${s}.tasks where id = p_task for update;
  if not found then return 'not_found'; end if;
  if v_state in ('completed', 'failed', 'cancelled') then return 'terminal'; end if;
  perform ${s}._cancel(p_task, v_now, jsonb_build_object('name', 'TaskCancelled', 'message', 'cancelled by cancel()'));
  return 'cancelled';
end $$;
${pinSearchPath(this.schema)}
`);
  }
}

const [PENDING, , SLEEPING, COMPLETED, FAILED, CANCELLED] = TASK_STATES.map((state) => `'${state}'`);
const ACTIVE = TASK_STATES.slice(0, 3).map((state) => `'${state}'`).join(', ');
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;
/** The cascade of cancel_task: every row after the first is polled for, never waited for. */
const NOWAIT = `pg_catalog.current_setting('durable.cascade_nowait', true) = 'on'`;
/** Tries of cancel_task with NOWAIT before the last one, which waits. */
const NOWAIT_TRIES = 100;

function functionsSql(s: string, schema: string): string {
  const { cancel: cancelChannel, wakeup } = channelsOf(schema);
  const cancelMessage = (task: string) =>
    `jsonb_build_object('name', 'TaskCancelled', 'message', format('cancelled because its parent task %s ended without completing', ${task}), 'parentTaskId', ${task})`;
  return `
-- The advisory lock a child's terminal transition holds from the moment it tells its parent.
create or replace function ${s}._ending_key(p_child uuid)
returns bigint language sql immutable ${SET_PATH} as $$
  select pg_catalog.hashtextextended('durable:ending:' || p_child::text, 0)
$$;

-- Whether another session is in the terminal transition of this child (it holds _ending_key).
create or replace function ${s}._is_ending(p_child uuid)
returns boolean language sql ${SET_PATH} as $$
  select exists (select 1 from pg_catalog.pg_locks l, (select ${s}._ending_key(p_child) as k) k
    where l.locktype = 'advisory' and l.granted and l.pid <> pg_catalog.pg_backend_pid()
      and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
      and l.classid = ((k.k >> 32) & 4294967295)::oid and l.objid = (k.k & 4294967295)::oid and l.objsubid = 1)
$$;

-- Whether the transaction holding a row (its xmax) waits, directly or through others, for a lock
-- this transaction holds.
create or replace function ${s}._holder_waits_for_me(p_xmax xid)
returns boolean language sql ${SET_PATH} as $$
  with recursive waiting(pid) as (
    select a.pid from pg_catalog.pg_stat_activity a
    where a.pid <> pg_catalog.pg_backend_pid() and pg_catalog.pg_backend_pid() = any(pg_catalog.pg_blocking_pids(a.pid))
    union
    select a.pid from pg_catalog.pg_stat_activity a, waiting w where w.pid = any(pg_catalog.pg_blocking_pids(a.pid))
  )
  select exists (select 1 from pg_catalog.pg_locks l where l.locktype = 'transactionid' and l.granted
    and l.transactionid = p_xmax and l.pid in (select pid from waiting))
$$;

-- cancel_task's cascade found a row busy: gives way (lock_not_available, which rolls the attempt
-- back to its savepoint) when its holder waits for this transaction, or after ~2 s of polling;
-- else pauses 1 ms. Returns the polls so far.
create or replace function ${s}._give_way(p_polls integer, p_holder_waits boolean)
returns integer language plpgsql ${SET_PATH} as $$
begin
  if p_holder_waits or p_polls >= 2000 then
    raise exception 'durable: cancel_task gives way to a transaction that holds a row it needs'
      using errcode = 'lock_not_available';
  end if;
  perform pg_catalog.pg_sleep(0.001);
  return p_polls + 1;
end $$;

-- A task became terminal (p_completed: it completed): when it is a child that a join of its
-- parent's current run waits for, it is counted off, and the last one (or, for joinAny, the first
-- completed one) wakes the run.
create or replace function ${s}._child_terminal(p_child uuid, p_completed boolean, p_now timestamptz)
returns void language plpgsql ${SET_PATH} as $$
declare
  v_parent uuid;
  v_left integer;
  v_run uuid;
  v_queue text;
  v_polls integer := 0;
  v_xmax xid;
begin
  select t.parent_task_id into v_parent from ${s}.tasks t where t.id = p_child;
  if v_parent is null then return; end if;
  -- The parent's lock orders this against its join; the next statements see what the join committed.
  if ${NOWAIT} then
    loop
      perform 1 from ${s}.tasks t where t.id = v_parent for update skip locked;
      exit when found;
      select t.xmax into v_xmax from ${s}.tasks t where t.id = v_parent;
      v_polls := ${s}._give_way(v_polls, ${s}._holder_waits_for_me(v_xmax));
    end loop;
  else
    perform 1 from ${s}.tasks t where t.id = v_parent for update skip locked;
    if not found then
      -- Before waiting: tells a cascade of cancel_task that holds the parent not to wait for this
      -- child, which ends (taken only here, so a batch of completions holds few such locks).
      perform pg_catalog.pg_advisory_xact_lock_shared(${s}._ending_key(p_child));
      perform 1 from ${s}.tasks t where t.id = v_parent for update;
    end if;
  end if;
  update ${s}.runs r set join_outstanding = case when p_completed and r.join_any then 0 else r.join_outstanding - 1 end
  where r.id = (select t.run_id from ${s}.tasks t where t.id = v_parent) and r.state = ${SLEEPING}
    and r.join_outstanding > 0 and p_child = any(r.join_children)
  returning r.join_outstanding, r.id, r.queue into v_left, v_run, v_queue;
  if v_run is null or v_left > 0 then return; end if;
  update ${s}.runs set state = ${PENDING}, available_at = p_now, wake_event = null,
    join_children = null, join_outstanding = null, join_any = null
  where id = v_run;
  update ${s}.tasks set state = ${PENDING}, updated_at = p_now where id = v_parent;
  perform pg_notify('${wakeup}', v_queue);
end $$;

-- Cancels every non-terminal descendant of the task (children, grandchildren, ...).
create or replace function ${s}._cancel_descendants(p_task uuid, p_now timestamptz)
returns void language plpgsql ${SET_PATH} as $$
declare
  v record;
  v_mine uuid[];
  v_busy uuid[];
  v_ending uuid[] := '{}';
  v_polls integer := 0;
begin
  if not ${NOWAIT} then
    for v in select t.id, t.state from ${s}.tasks t where t.parent_task_id = p_task order by t.id for update loop
      if v.state in (${ACTIVE}) then
        perform ${s}._cancel(v.id, p_now, ${cancelMessage('p_task')});
      else
        perform ${s}._cancel_descendants(v.id, p_now);
      end if;
    end loop;
    return;
  end if;
  loop
    -- The children free now (and those already held); the others are busy.
    select coalesce(array_agg(c.id), '{}') into v_mine from (
      select t.id from ${s}.tasks t where t.parent_task_id = p_task order by t.id for update skip locked) c;
    select coalesce(array_agg(t.id), '{}') into v_busy from ${s}.tasks t
    where t.parent_task_id = p_task and t.id <> all(v_mine) and t.id <> all(v_ending);
    exit when cardinality(v_busy) = 0;
    -- A busy child in its terminal transition waits for this task in _child_terminal: it is left
    -- to end, after this commits. Any other holder is a write of the child's run, done in a moment.
    v_ending := v_ending || coalesce((select array_agg(b) from unnest(v_busy) b where ${s}._is_ending(b)), '{}');
    continue when not exists (select 1 from unnest(v_busy) b where b <> all(v_ending));
    v_polls := ${s}._give_way(v_polls, (select coalesce(bool_or(${s}._holder_waits_for_me(t.xmax)), false)
      from ${s}.tasks t where t.id = any(v_busy) and t.id <> all(v_ending)));
  end loop;
  for v in select t.id, t.state from ${s}.tasks t where t.id = any(v_mine) order by t.id loop
    if v.state in (${ACTIVE}) then
      perform ${s}._cancel(v.id, p_now, ${cancelMessage('p_task')});
    else
      perform ${s}._cancel_descendants(v.id, p_now);
    end if;
  end loop;
  -- An ending child's own descendants, as for a child that ended before (a final failure has
  -- cancelled them already; a completion leaves them to this cascade).
  for v in select b as id from unnest(v_ending) b order by b loop
    perform ${s}._cancel_descendants(v.id, p_now);
  end loop;
end $$;

create or replace function ${s}._cancel(p_task uuid, p_now timestamptz, p_reason jsonb)
returns void language plpgsql ${SET_PATH} as $$
declare
  v_run uuid;
  v_polls integer := 0;
  v_busy integer;
  v_holder_waits boolean;
begin
  if ${NOWAIT} then
    -- Its live runs and its waits, all of them (a claim or an emit may hold one for a moment).
    loop
      with runs as (
        select r.id from ${s}.runs r where r.task_id = p_task and r.state in (${ACTIVE}) for update skip locked
      ), waits as (
        select w.ctid as tid from ${s}.waits w where w.task_id = p_task for update skip locked
      ), busy as (
        select r.xmax from ${s}.runs r where r.task_id = p_task and r.state in (${ACTIVE}) and r.id not in (select id from runs)
        union all
        select w.xmax from ${s}.waits w where w.task_id = p_task and w.ctid not in (select tid from waits)
      )
      select count(*), coalesce(bool_or(${s}._holder_waits_for_me(busy.xmax)), false) into v_busy, v_holder_waits from busy;
      exit when v_busy = 0;
      v_polls := ${s}._give_way(v_polls, v_holder_waits);
    end loop;
  end if;
  update ${s}.tasks set state = ${CANCELLED}, error = p_reason, cancel_at = null,
    finished_at = p_now, updated_at = p_now
  where id = p_task;
  for v_run in
    update ${s}.runs set state = ${CANCELLED}, lease_expires_at = null, finished_at = p_now
    where task_id = p_task and state in (${ACTIVE})
    returning id
  loop
    -- Tells a worker running it to stop at its next context call, without a round trip. By run:
    -- a later run of the task (after retry()) is another execution and must not hear it.
    perform pg_notify('${cancelChannel}', v_run::text);
  end loop;
  delete from ${s}.waits where task_id = p_task;
  perform ${s}._cancel_descendants(p_task, p_now);
  perform ${s}._child_terminal(p_task, false, p_now);
end $$;

-- Returns 'cancelled', 'terminal' (nothing to do) or 'not_found'. The task's row is locked while
-- nothing else is held; the cascade after it never waits for a lock (see the migration's
-- comment), and when it gives way the attempt rolls back to its savepoint (its locks released,
-- its notifications dropped) and is tried again a moment later.
create or replace function ${s}.cancel_task(p_task uuid)
returns text language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_state text;
  v_outcome text;
  v_try integer := 0;
begin
  loop
    v_try := v_try + 1;
    begin
      perform pg_catalog.set_config('durable.cascade_nowait', case when v_try <= ${NOWAIT_TRIES} then 'on' else 'off' end, true);
      select state into v_state from ${s}.tasks where id = p_task for update;
      if not found then
        v_outcome := 'not_found';
      elsif v_state in (${COMPLETED}, ${FAILED}, ${CANCELLED}) then
        v_outcome := 'terminal';
      else
        perform ${s}._cancel(p_task, v_now, jsonb_build_object('name', 'TaskCancelled', 'message', 'cancelled by cancel()'));
        v_outcome := 'cancelled';
      end if;
      perform pg_catalog.set_config('durable.cascade_nowait', 'off', true);
      return v_outcome;
    exception when lock_not_available then
      if v_try > ${NOWAIT_TRIES} then raise; end if;
      perform pg_catalog.pg_sleep(least(v_try, 20) / 1000.0);
    end;
  end loop;
end $$;
`;
}
