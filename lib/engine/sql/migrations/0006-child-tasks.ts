import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { channelsOf } from '../channels.js';
import { quoteSchema } from '../schema-name.js';
import { DurableExecutionFencing1764000000004, PINNED_SEARCH_PATH, pinSearchPath } from './0004-execution-fencing.js';

/**
 * Child tasks, joins and cascades (issue 14).
 *
 * - `tasks.parent_task_id`: the task whose `ctx.spawn` created it (null for a top-level task).
 *   `spawn_child` inserts the child and the parent's checkpoint of its handle in one fenced
 *   transaction, so a replayed or retried parent finds the handle and never spawns again.
 * - `join_tasks` checkpoints the outcome of a join when the children it needs are terminal;
 *   otherwise it suspends the run (`sleeping`, until its deadline or `infinity`) and records on
 *   the run which children it waits for (`join_children`), how many (`join_outstanding`) and
 *   whether one completed child is enough (`join_any`). Each child's terminal transition (its
 *   completion in `write_batch`, its final failure in `_fail`, its cancellation in `_cancel`)
 *   calls `_child_terminal`, which locks the parent's task row, counts the child off and wakes
 *   the run (pending, NOTIFY on its queue) when the count reaches 0: a fan-in of N children
 *   wakes the parent once. The join reads the children under the parent's lock, and the child
 *   takes that lock before it reads the run (in a statement of its own, so with a snapshot taken
 *   after the join committed): a child ends either before the join read it (the join sees it
 *   terminal) or after the join committed (the child sees the join). A spurious wake is harmless:
 *   the join runs again and suspends again.
 * - `_cancel` (cancel(), cancellation policies) and the final failure in `_fail` cancel every
 *   non-terminal descendant of the task. A completion leaves the children alone.
 */
export class DurableChildTasks1764000000006 implements MigrationInterface {
  readonly name = 'DurableChildTasks1764000000006';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
alter table ${s}.tasks add column if not exists parent_task_id uuid;
create index if not exists tasks_parent on ${s}.tasks (parent_task_id) where parent_task_id is not null;
alter table ${s}.runs add column if not exists join_children uuid[],
  add column if not exists join_outstanding integer,
  add column if not exists join_any boolean,
  add column if not exists join_deadline timestamptz;
${functionsSql(s, this.schema)}
${pinSearchPath(this.schema)}
`);
  }

  /** Back to 0004's `_cancel`, `_fail` and `write_batch` (0004 runs again: it is idempotent), without the new columns. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
drop function if exists ${s}.join_tasks(uuid, uuid, text, integer, text, uuid[], boolean, double precision, integer, double precision),
  ${s}.spawn_child(uuid, uuid, text, integer, text, text, text, json, json, integer, jsonb, jsonb, text, double precision,
    timestamptz, integer, double precision),
  ${s}._child_terminal(uuid, boolean, timestamptz);`);
    await new DurableExecutionFencing1764000000004(this.schema).up(runner);
    await runner.query(`
drop function if exists ${s}._cancel_descendants(uuid, timestamptz);
drop index if exists ${s}.tasks_parent;
alter table ${s}.tasks drop column if exists parent_task_id;
alter table ${s}.runs drop column if exists join_children, drop column if exists join_outstanding,
  drop column if exists join_any, drop column if exists join_deadline;`);
  }
}

const [PENDING, RUNNING, SLEEPING, COMPLETED, FAILED, CANCELLED] = TASK_STATES.map((state) => `'${state}'`);
const ACTIVE = `${PENDING}, ${RUNNING}, ${SLEEPING}`;
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;

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
  perform 1 from ${s}.tasks t where t.id = v_parent for update;
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

create or replace function ${s}._fail(p_task uuid, p_run uuid, p_error jsonb, p_final boolean, p_now timestamptz)
returns void language plpgsql ${SET_PATH} as $$
declare
  v_task record;
  v_attempt integer;
  v_delay_ms double precision;
  v_max_duration double precision;
  v_at timestamptz;
  v_run uuid;
begin
  select * into v_task from ${s}.tasks where id = p_task;
  update ${s}.runs set state = ${FAILED}, error = p_error, lease_expires_at = null, finished_at = p_now
  where id = p_run returning attempt into v_attempt;
  delete from ${s}.waits where run_id = p_run;

  if p_final or v_task.retry->>'kind' = 'none' or v_attempt >= v_task.max_attempts then
    update ${s}.tasks set state = ${FAILED}, error = p_error, cancel_at = null,
      finished_at = p_now, updated_at = p_now
    where id = p_task;
    perform ${s}._cancel_descendants(p_task, p_now);
    perform ${s}._child_terminal(p_task, false, p_now);
    return;
  end if;

  v_delay_ms := case v_task.retry->>'kind'
    when 'fixed' then ${s}._num(v_task.retry->'delayMs')
    when 'exponential' then least(
      ${s}._backoff(${s}._num(v_task.retry->'baseDelayMs'), coalesce(${s}._num(v_task.retry->'factor'), 2), v_attempt),
      coalesce(${s}._num(v_task.retry->'maxDelayMs'), 'Infinity'))
    else 0
  end;
  v_at := p_now + ${s}._ms(coalesce(v_delay_ms, 0));

  v_max_duration := ${s}._num(v_task.cancellation->'maxDurationMs');
  if v_task.first_started_at is not null and v_max_duration is not null
     and v_at >= v_task.first_started_at + ${s}._ms(v_max_duration) then
    perform ${s}._cancel(p_task, p_now, jsonb_build_object('name', 'TaskCancelled',
      'message', 'cancelled by policy: the next attempt would start after maxDurationMs',
      'lastError', p_error));
    return;
  end if;

  v_run := gen_random_uuid();
  insert into ${s}.runs (id, task_id, queue, attempt, state, available_at, created_at)
  values (v_run, p_task, v_task.queue, v_attempt + 1, ${PENDING}, v_at, p_now);
  update ${s}.tasks set state = ${PENDING}, attempts = v_attempt + 1, run_id = v_run,
    error = p_error, updated_at = p_now
  where id = p_task;
  if v_at <= p_now then perform pg_notify('${wakeup}', v_task.queue); end if;
end $$;

-- ctx.spawn: the child task (its parent recorded) and the parent's checkpoint of its handle, in
-- one fenced transaction. A checkpoint already there is the handle: nothing is spawned again.
create or replace function ${s}.spawn_child(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_step text,
  p_queue text, p_name text, p_params json, p_headers json, p_max_attempts integer, p_retry jsonb,
  p_cancellation jsonb, p_idempotency_key text, p_delay_ms double precision, p_run_at timestamptz,
  p_attempt integer, p_lease_ms double precision)
returns table (outcome text, value json) language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${s}._fence(p_task, p_run, p_worker, p_epoch, v_now);
  v_value json;
  v_child uuid;
  v_created boolean;
begin
  if v_fence <> 'ok' then return query select v_fence, null::json; return; end if;
  select cp.value into v_value from ${s}.checkpoints cp where cp.task_id = p_task and cp.name = p_step;
  if found then return query select 'checkpoint'::text, v_value; return; end if;
  select st.task_id, st.created into v_child, v_created
  from ${s}.spawn_task(p_queue, p_name, p_params, p_headers, p_max_attempts, p_retry, p_cancellation,
    p_idempotency_key, p_delay_ms, p_run_at) st;
  if v_created then update ${s}.tasks set parent_task_id = p_task where id = v_child; end if;
  v_value := json_build_object('taskId', v_child, 'taskName', p_name, 'queue', p_queue);
  perform ${s}._checkpoint(p_task, p_step, v_value, p_attempt, v_now);
  perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
  return query select 'checkpoint'::text, v_value;
end $$;

-- ctx.join / joinAll / joinAny. Outcome 'checkpoint' with the join's outcome (checkpointed):
-- {results: [...]} (all), {index, result} (any), {failed: {childTaskId, name, message}},
-- {cancelled: {childTaskId}}, {timedOut: true}; 'suspended'; 'not_child' (value: the id; nothing
-- written); or the fence's outcome.
create or replace function ${s}.join_tasks(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_step text,
  p_children uuid[], p_any boolean, p_timeout_ms double precision, p_attempt integer, p_lease_ms double precision)
returns table (outcome text, value json) language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${s}._fence(p_task, p_run, p_worker, p_epoch, v_now);
  v_value json;
  v_bad uuid;
  v_open uuid[];
  v_deadline timestamptz;
begin
  if v_fence <> 'ok' then return query select v_fence, null::json; return; end if;
  select cp.value into v_value from ${s}.checkpoints cp where cp.task_id = p_task and cp.name = p_step;
  if found then return query select 'checkpoint'::text, v_value; return; end if;

  select c.id into v_bad from unnest(p_children) c(id) left join ${s}.tasks t on t.id = c.id
  where t.parent_task_id is distinct from p_task limit 1;
  if found then return query select 'not_child'::text, to_json(v_bad); return; end if;

  select array_agg(c.id order by c.n) filter (where t.state in (${ACTIVE})) into v_open
  from unnest(p_children) with ordinality c(id, n) join ${s}.tasks t on t.id = c.id;
  v_value := null;
  if p_any then
    select json_build_object('index', c.n - 1, 'result', t.result) into v_value
    from unnest(p_children) with ordinality c(id, n) join ${s}.tasks t on t.id = c.id
    where t.state = ${COMPLETED} order by t.finished_at, c.n limit 1;
  end if;
  if v_value is null and v_open is null then
    select case when t.state = ${FAILED}
        then json_build_object('failed', json_build_object('childTaskId', t.id,
          'name', coalesce(t.error->>'name', 'Error'), 'message', coalesce(t.error->>'message', '')))
        else json_build_object('cancelled', json_build_object('childTaskId', t.id)) end into v_value
    from unnest(p_children) with ordinality c(id, n) join ${s}.tasks t on t.id = c.id
    where t.state in (${FAILED}, ${CANCELLED}) order by c.n limit 1;
    if v_value is null then
      select json_build_object('results', coalesce(json_agg(t.result order by c.n), '[]'::json)) into v_value
      from unnest(p_children) with ordinality c(id, n) join ${s}.tasks t on t.id = c.id;
    end if;
  end if;
  if v_value is null then
    -- The deadline of this join, kept on the run across its suspensions (a retry starts again).
    select r.join_deadline into v_deadline from ${s}.runs r where r.id = p_run;
    v_deadline := coalesce(v_deadline, v_now + ${s}._ms(p_timeout_ms));
    if v_deadline <= v_now then v_value := json_build_object('timedOut', true); end if;
  end if;

  if v_value is not null then
    perform ${s}._checkpoint(p_task, p_step, v_value, p_attempt, v_now);
    update ${s}.runs set lease_expires_at = v_now + ${s}._ms(p_lease_ms),
      join_children = null, join_outstanding = null, join_any = null, join_deadline = null
    where id = p_run;
    return query select 'checkpoint'::text, v_value;
    return;
  end if;
  update ${s}.runs set state = ${SLEEPING}, available_at = coalesce(v_deadline, 'infinity'), lease_expires_at = null,
    wake_event = null, join_children = v_open,
    join_outstanding = (select count(distinct c) from unnest(v_open) c), join_any = p_any,
    join_deadline = v_deadline
  where id = p_run;
  update ${s}.tasks set state = ${SLEEPING}, updated_at = v_now where id = p_task;
  return query select 'suspended'::text, null::json;
end $$;

${writeBatchSql(s)}
`;
}

function writeBatchSql(s: string): string {
  return `
-- p_ops: [{ "kind": "checkpoint" | "complete", "task_id", "run_id", "epoch", "name", "value",
-- "undefined", "attempt", "lease_ms" }, ...], at most one per run. Returns the index (from 1) and
-- outcome of each operation whose task and run exist ('lost' for the others): 'ok', 'cancelled'
-- or 'lost' as the fence says; for a checkpoint also 'exists': one is committed under that name,
-- and it stays (first writer wins).
create or replace function ${s}.write_batch(p_worker text, p_ops json)
returns table (i integer, outcome text) language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
begin
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
      ${s}._fence_outcome(t.state, r.state, r.worker_id, r.claim_epoch, r.lease_expires_at, p_worker, o.epoch, v_now) as fence
    from ops o
    join ${s}.tasks t on t.id = o.task_id
    join ${s}.runs r on r.id = o.run_id and r.task_id = o.task_id
    left join ${s}.checkpoints cp on o.kind = 'checkpoint' and cp.task_id = o.task_id and cp.name = o.name
    order by t.id
    for update of t, r
  ), ok as (
    select l.kind, l.task_id, l.run_id, l.name, l.attempt, l.lease_ms,
      case when l."undefined" then null else coalesce(l.value, 'null'::json) end as value
    from locked l where l.fence = 'ok' and not l.stored
  ), checkpoints as (
    -- First writer wins: a committed checkpoint may have been returned to user code already.
    insert into ${s}.checkpoints (task_id, name, value, attempt, created_at)
    select ok.task_id, ok.name, ok.value, ok.attempt, v_now from ok where ok.kind = 'checkpoint'
    on conflict (task_id, name) do nothing
    returning 1
  ), renewed as (
    -- The batched form of _renew_lease.
    update ${s}.runs r set lease_expires_at = v_now + ${s}._ms(ok.lease_ms)
    from ok where ok.kind = 'checkpoint' and r.id = ok.run_id
    returning 1
  ), completed_runs as (
    update ${s}.runs r set state = ${COMPLETED}, lease_expires_at = null, finished_at = v_now
    from ok where ok.kind = 'complete' and r.id = ok.run_id
    returning 1
  ), completed_tasks as (
    update ${s}.tasks t set state = ${COMPLETED}, result = ok.value, error = null, cancel_at = null,
      finished_at = v_now, updated_at = v_now
    from ok where ok.kind = 'complete' and t.id = ok.task_id
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
