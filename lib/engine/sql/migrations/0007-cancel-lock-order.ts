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
 * completion. The order cannot be made the same (the child's side holds the child before it knows
 * it must tell the parent, and the cascade learns the children only from the parent), so the
 * cascade of `cancel_task` never waits while it holds a lock: it locks the task (holding nothing
 * yet), then every further row (descendants, runs, waits, the task's own parent) with NOWAIT. A
 * busy row raises lock_not_available, which rolls the attempt back to its savepoint, releasing
 * every lock it took, so the transition holding that row gets the parent and commits; after a
 * pause of a few milliseconds the cancel tries again and sees the child terminal. After 100
 * tries (about 1.8 s of pauses: a row held by a long transaction) the last attempt waits for its
 * locks as before.
 *
 * The mode is a transaction-local setting, `durable.cascade_nowait`, read by `_cancel`,
 * `_cancel_descendants` and `_child_terminal`; every other caller of those functions (the final
 * failure in `_fail`, the claim's sweep of cancellation policies, `write_batch`) keeps waiting
 * for its locks as before.
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

  /** Back to 0006's `_cancel`, `_cancel_descendants` and `_child_terminal` (0006 is idempotent) and 0002's `cancel_task`. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await new DurableChildTasks1764000000006(this.schema).up(runner);
    await runner.query(`
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
/** The cascade of cancel_task: lock every row after the first with NOWAIT. */
const NOWAIT = `pg_catalog.current_setting('durable.cascade_nowait', true) = 'on'`;
/** Tries of cancel_task with NOWAIT before the last one, which waits. */
const NOWAIT_TRIES = 100;

function functionsSql(s: string, schema: string): string {
  const { cancel: cancelChannel, wakeup } = channelsOf(schema);
  return `
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
begin
  select t.parent_task_id into v_parent from ${s}.tasks t where t.id = p_child;
  if v_parent is null then return; end if;
  -- The parent's lock orders this against its join; the next statements see what the join committed.
  if ${NOWAIT} then
    perform 1 from ${s}.tasks t where t.id = v_parent for update nowait;
    perform 1 from ${s}.runs r where r.id = (select t.run_id from ${s}.tasks t where t.id = v_parent) for update nowait;
  else
    perform 1 from ${s}.tasks t where t.id = v_parent for update;
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
begin
  -- All the children at once, or none: a child held by its own terminal transition (which waits
  -- for this task's lock) must not be waited for. The loop's locks below are then already held.
  if ${NOWAIT} then
    perform 1 from ${s}.tasks t where t.parent_task_id = p_task for update nowait;
  end if;
  for v in select t.id, t.state from ${s}.tasks t where t.parent_task_id = p_task order by t.id for update loop
    if v.state in (${ACTIVE}) then
      perform ${s}._cancel(v.id, p_now, jsonb_build_object('name', 'TaskCancelled',
        'message', format('cancelled because its parent task %s ended without completing', p_task),
        'parentTaskId', p_task));
    else
      perform ${s}._cancel_descendants(v.id, p_now);
    end if;
  end loop;
end $$;

create or replace function ${s}._cancel(p_task uuid, p_now timestamptz, p_reason jsonb)
returns void language plpgsql ${SET_PATH} as $$
declare
  v_run uuid;
begin
  if ${NOWAIT} then
    perform 1 from ${s}.runs where task_id = p_task and state in (${ACTIVE}) for update nowait;
    perform 1 from ${s}.waits where task_id = p_task for update nowait;
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
-- nothing else is held; the cascade after it takes every lock with NOWAIT, and a busy row sends
-- the whole attempt back to its savepoint (its locks released, its notifications dropped) to be
-- tried again a moment later (see the migration's comment).
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
