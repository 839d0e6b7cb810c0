import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { channelsOf } from '../channels.js';
import { quoteSchema } from '../schema-name.js';
import { DurableCreateFunctions1764000000002 } from './0002-create-functions.js';
import { DurableBatchedWrites1764000000003 } from './0003-batched-writes.js';

/** The search_path every durable function runs with: names resolve in pg_catalog only. */
export const PINNED_SEARCH_PATH = 'pg_catalog, pg_temp';

/**
 * Pins `search_path` on every function of the schema (a caller's search_path can then never
 * swap in another `clock_timestamp()` or `gen_random_uuid()`). A later migration that creates
 * functions runs it again after them.
 */
export function pinSearchPath(schema: string): string {
  const s = quoteSchema(schema);
  return `
do $pin$
declare
  v_fn record;
begin
  for v_fn in
    select p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) as args
    from pg_catalog.pg_proc p where p.pronamespace = '${s}'::regnamespace
  loop
    execute pg_catalog.format('alter function %I.%I(%s) set search_path = ${PINNED_SEARCH_PATH}', '${schema}', v_fn.proname, v_fn.args);
  end loop;
end $pin$;`;
}

/**
 * Execution fencing, poison isolation and hardening (issue 13).
 *
 * - A claim epoch (`runs.claim_epoch`) is bumped by every claim of a run and returned to the
 *   worker; every fenced write carries it. A suspended run resumes under the same run id, often
 *   on the same worker, so run id, worker id and lease alone do not tell one execution from the
 *   next: a write the previous execution still had in flight is now refused (`lost`).
 * - Checkpoints are first-writer-wins everywhere: once committed (and so possibly returned to
 *   user code), a checkpoint is never replaced. `write_batch` says `exists` when it was there.
 * - The claim returns the bytes of the task's checkpoints with them (`checkpoint_bytes`): the
 *   worker counts on from there and refuses a step that would take the task over its cap, so
 *   the claim's aggregate stays far below the 1 GB of `json_agg` and V8's largest string. No
 *   counter is written: within an execution only that execution writes checkpoints of its task
 *   (the epoch fences everything else), and each claim counts them again.
 * - The sweeps of `claim_tasks` handle each task in a sub-transaction: a task whose sweep fails
 *   is marked failed (`SweepFailed`) and the others go on. Numbers read from stored JSON go
 *   through `_num`, and `_backoff` is defined for every input.
 * - Claims give each polled queue a fair share of the free slots (from a first queue the worker
 *   rotates), then fill what is left.
 * - Functions whose signature changed are dropped and created again (no stale overload; 0002
 *   and 0003 can run again over this, as the module does after an app's own DataSource ran
 *   them, and this migration then drops what they made again).
 * - `defer_run` undoes what its claim did to the task when that claim was its first start.
 * - Cancel notifications carry the run id. `release_runs` puts back the runs a worker holds in
 *   the database but is not executing (after a claim whose outcome it could not know).
 * - `now()` is the plain clock; tests install the test clock themselves (statements.ts
 *   `installTestClock`). Every function pins `search_path`.
 */
export class DurableExecutionFencing1764000000004 implements MigrationInterface {
  readonly name = 'DurableExecutionFencing1764000000004';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
alter table ${s}.runs add column if not exists claim_epoch integer not null default 0;

drop function if exists ${s}._fence_outcome(text, text, text, timestamptz, text, timestamptz);
drop function if exists ${s}._fence(uuid, uuid, text, timestamptz);
drop function if exists ${s}.claim_tasks(text[], text, integer, double precision, boolean);
drop function if exists ${s}.heartbeat(uuid, uuid, text, double precision);
drop function if exists ${s}.fail_run(uuid, uuid, text, jsonb, boolean);
drop function if exists ${s}.defer_run(uuid, uuid, text, double precision);
drop function if exists ${s}.sleep_until(uuid, uuid, text, text, timestamptz, double precision, integer, double precision);
drop function if exists ${s}.await_event(uuid, uuid, text, text, text, text, double precision, integer, double precision);
drop function if exists ${s}.emit_from_task(uuid, uuid, text, text, text, text, json, integer, double precision);
${helpersSql(s, this.schema)}
${claimSql(s)}
${transitionsSql(s, this.schema)}
${writeBatchSql(s)}
${pinSearchPath(this.schema)}
`);
  }

  /** Back to the functions of 0002 and 0003 (they are created again as they were), without the new columns. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
drop function if exists ${s}._fence_outcome(text, text, text, integer, timestamptz, text, integer, timestamptz),
  ${s}._fence(uuid, uuid, text, integer, timestamptz),
  ${s}.claim_tasks(text[], text, integer, double precision, boolean, integer),
  ${s}.heartbeat(uuid, uuid, text, integer, double precision),
  ${s}.fail_run(uuid, uuid, text, integer, jsonb, boolean),
  ${s}.defer_run(uuid, uuid, text, integer, double precision, boolean),
  ${s}.sleep_until(uuid, uuid, text, integer, text, timestamptz, double precision, integer, double precision),
  ${s}.await_event(uuid, uuid, text, integer, text, text, text, double precision, integer, double precision),
  ${s}.emit_from_task(uuid, uuid, text, integer, text, text, text, json, integer, double precision),
  ${s}.release_runs(text, uuid[]),
  ${s}._sweep_failed(uuid, timestamptz, text),
  ${s}._num(jsonb);`);
    await new DurableCreateFunctions1764000000002(this.schema).up(runner);
    await new DurableBatchedWrites1764000000003(this.schema).up(runner);
    await runner.query(`alter table ${s}.runs drop column if exists claim_epoch;`);
  }
}

/** SQL literals of the task states, from TASK_STATES. */
const [PENDING, RUNNING, SLEEPING, COMPLETED, FAILED, CANCELLED] = TASK_STATES.map((state) => `'${state}'`);
const ACTIVE = `${PENDING}, ${RUNNING}, ${SLEEPING}`;
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;

function helpersSql(s: string, schema: string): string {
  const { cancel: cancelChannel } = channelsOf(schema);
  return `
-- The database clock. Only tests move it: they install a clock of their own (statements.ts installTestClock).
create or replace function ${s}.now() returns timestamptz language sql volatile ${SET_PATH} as $$
  select clock_timestamp()
$$;

-- A number stored in JSON, or null for anything else (a string, a missing key): a value that
-- validation never saw cannot make a sweep or a claim throw.
create or replace function ${s}._num(p jsonb) returns double precision language sql immutable ${SET_PATH} as $$
  select case when jsonb_typeof(p) = 'number' then least(greatest((p #>> '{}')::numeric, -1e300), 1e300)::double precision end
$$;

-- base * factor^(attempt - 1), capped at a century; checked in logarithms first, so it cannot
-- overflow. Total: a base that is not positive gives 0, a factor below 1 (or NaN, or missing)
-- counts as 1.
create or replace function ${s}._backoff(p_base double precision, p_factor double precision, p_attempt integer)
returns double precision language sql immutable ${SET_PATH} as $$
  select case when p_base is null or p_base = 'NaN' or p_base <= 0 then 0
    else (select case when v.n = 0 then least(p_base, 3.15e12)
                      when ln(p_base) + v.n * ln(v.f) >= ln(3.15e12) then 3.15e12
                      when p_base >= 1 then p_base * power(v.f, v.n)
                      else exp(ln(p_base) + v.n * ln(v.f)) end
          from (select greatest(p_attempt - 1, 0)::double precision as n,
                  case when p_factor is null or p_factor = 'NaN' or p_factor < 1 then 1 else p_factor end as f) v)
    end
$$;

-- The fence rule, written once: a worker may write for a run only while its task is not
-- cancelled and the run is running, owned by that worker, claimed by the same claim (epoch),
-- with an unexpired lease.
create or replace function ${s}._fence_outcome(p_task_state text, p_run_state text, p_run_worker text,
  p_run_epoch integer, p_lease_expires_at timestamptz, p_worker text, p_epoch integer, p_now timestamptz)
returns text language sql immutable ${SET_PATH} as $$
  select case
    when p_task_state = ${CANCELLED} then 'cancelled'
    when p_run_state = ${RUNNING} and p_run_worker = p_worker and p_run_epoch = p_epoch
      and p_lease_expires_at > p_now then 'ok'
    else 'lost' end
$$;

-- Locks the task and says whether this execution (run, worker, epoch) may still write.
create or replace function ${s}._fence(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_now timestamptz)
returns text language plpgsql ${SET_PATH} as $$
declare
  v_task_state text;
  v_run record;
begin
  select state into v_task_state from ${s}.tasks where id = p_task for update;
  if not found then return 'lost'; end if;
  select state, worker_id, claim_epoch, lease_expires_at into v_run from ${s}.runs where id = p_run and task_id = p_task;
  return ${s}._fence_outcome(v_task_state, v_run.state, v_run.worker_id, v_run.claim_epoch, v_run.lease_expires_at,
    p_worker, p_epoch, p_now);
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
  if v_at <= p_now then perform pg_notify('${channelsOf(schema).wakeup}', v_task.queue); end if;
end $$;

-- A sweep could not handle this task (corrupt data, a value no check foresaw): it is failed
-- with the reason, so that the sweep, and the claims of every worker of its queue, go on.
create or replace function ${s}._sweep_failed(p_task uuid, p_now timestamptz, p_message text)
returns void language plpgsql ${SET_PATH} as $$
declare
  v_error jsonb := jsonb_build_object('name', 'SweepFailed', 'message',
    p_message || '; durable failed the task so that the other tasks of its queue go on');
begin
  update ${s}.tasks set state = ${FAILED}, error = v_error, cancel_at = null, finished_at = p_now, updated_at = p_now
  where id = p_task;
  update ${s}.runs set state = ${FAILED}, error = v_error, lease_expires_at = null, finished_at = p_now
  where task_id = p_task and state in (${ACTIVE});
  delete from ${s}.waits where task_id = p_task;
exception when others then
  raise warning 'durable: task % could not be swept nor failed: %', p_task, sqlerrm;
end $$;
`;
}

/** Transient errors are not the task's fault: they abort the claim as before, and it is tried again. */
const TRANSIENT = 'deadlock_detected or serialization_failure or lock_not_available or insufficient_resources';

function claimSql(s: string): string {
  return `
-- Sweeps (bounded by p_limit, each task on its own) and claims. The queues are visited from
-- p_queues[p_first_queue % n] on (a random one when null; a worker rotates it claim after claim):
-- each gets a fair share of the free slots, then the queues that filled their share get what is
-- left. Returns one row per claimed run, with its claim epoch and whether this claim was its
-- task's first start, then, when fewer than p_limit were claimed, a row of nulls with the
-- database time and the next due time.
create or replace function ${s}.claim_tasks(p_queues text[], p_worker text, p_limit integer,
  p_lease_ms double precision, p_sweep boolean default true, p_first_queue integer default null)
returns table (run_id uuid, task_id uuid, attempt integer, epoch integer, first_start boolean, queue text,
  name text, params json, headers json, checkpoints json, checkpoint_bytes bigint, db_now timestamptz,
  next_due_at timestamptz)
language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_n integer := coalesce(array_length(p_queues, 1), 0);
  v_start integer := case when v_n <= 1 then 0
    when p_first_queue is null then floor(random() * v_n)::integer else abs(p_first_queue % v_n) end;
  v_queue text;
  v_row record;
  v_swept integer := 0;
  v_claimed integer := 0;
  v_quota integer;
  v_full text[] := '{}';
  v_count integer;
  v_next timestamptz;
  v_lease_until timestamptz := v_now + ${s}._ms(p_lease_ms);
begin
  -- The sweeps are skipped when the caller swept a moment ago (they are not urgent).
  for v_k in 0 .. case when p_sweep then v_n - 1 else -1 end loop
    exit when v_swept >= p_limit;
    v_queue := p_queues[(v_start + v_k) % v_n + 1];
    for v_row in
      select t.id, t.first_started_at from ${s}.tasks t
      where t.queue = v_queue and t.cancel_at <= v_now and t.state in (${ACTIVE})
      order by t.cancel_at limit p_limit - v_swept
      for update skip locked
    loop
      v_swept := v_swept + 1;
      begin
        perform ${s}._cancel(v_row.id, v_now, jsonb_build_object('name', 'TaskCancelled',
          'message', case when v_row.first_started_at is null
            then 'cancelled by policy: not started within maxDelayMs'
            else 'cancelled by policy: not finished within maxDurationMs' end));
      exception when ${TRANSIENT} then raise;
      when others then
        perform ${s}._sweep_failed(v_row.id, v_now, format(
          'could not cancel this task by its cancellation policy (%s: %s)', sqlstate, sqlerrm));
      end;
    end loop;
  end loop;

  v_swept := 0;
  for v_k in 0 .. case when p_sweep then v_n - 1 else -1 end loop
    exit when v_swept >= p_limit;
    v_queue := p_queues[(v_start + v_k) % v_n + 1];
    for v_row in
      select r.id, r.task_id, r.worker_id, r.lease_expires_at, r.attempt from ${s}.runs r
      where r.queue = v_queue and r.state = ${RUNNING} and r.lease_expires_at <= v_now
      order by r.lease_expires_at limit p_limit - v_swept
    loop
      perform 1 from ${s}.tasks t where t.id = v_row.task_id for update skip locked;
      continue when not found;
      perform 1 from ${s}.runs r where r.id = v_row.id and r.state = ${RUNNING} and r.lease_expires_at <= v_now;
      continue when not found;
      v_swept := v_swept + 1;
      begin
        perform ${s}._fail(v_row.task_id, v_row.id, jsonb_build_object('name', 'LeaseExpired',
          'message', 'the worker did not finish or renew its lease in time',
          'workerId', v_row.worker_id, 'attempt', v_row.attempt, 'leaseExpiredAt', v_row.lease_expires_at),
          false, v_now);
      exception when ${TRANSIENT} then raise;
      when others then
        perform ${s}._sweep_failed(v_row.task_id, v_now, format(
          'could not fail the expired run %s of this task (%s: %s)', v_row.id, sqlstate, sqlerrm));
      end;
    end loop;
  end loop;

  for v_k in 0 .. 2 * v_n - 1 loop
    exit when v_claimed >= p_limit;
    v_queue := p_queues[(v_start + v_k) % v_n + 1];
    if v_k < v_n then
      v_quota := ceil((p_limit - v_claimed)::numeric / (v_n - v_k))::integer;
    else
      continue when not (v_queue = any(v_full));
      v_quota := p_limit - v_claimed;
    end if;
    return query
    with candidates as (
      select r.id as run_id, r.task_id, r.attempt, r.claim_epoch + 1 as epoch, t.first_started_at is null as first_start,
        t.queue, t.name, t.params, t.headers
      from ${s}.runs r join ${s}.tasks t on t.id = r.task_id
      where r.queue = v_queue and r.state in (${PENDING}, ${SLEEPING}) and r.available_at <= v_now
        and t.state in (${PENDING}, ${SLEEPING})
      order by r.available_at, r.id
      limit v_quota
      for update of r, t skip locked
    ), claimed_runs as (
      update ${s}.runs r set state = ${RUNNING}, worker_id = p_worker, claim_epoch = c.epoch,
        lease_expires_at = v_lease_until, started_at = coalesce(r.started_at, v_now), wake_event = null
      from candidates c where r.id = c.run_id
    ), claimed_tasks as (
      update ${s}.tasks t set state = ${RUNNING}, updated_at = v_now,
        first_started_at = coalesce(t.first_started_at, v_now),
        cancel_at = case
          when t.first_started_at is not null then t.cancel_at
          when t.cancellation is null then null
          else v_now + ${s}._ms(${s}._num(t.cancellation->'maxDurationMs')) end
      from candidates c where t.id = c.task_id
    )
    -- From the candidates alone: joining the two update CTEs would be a quadratic nested loop.
    select c.run_id, c.task_id, c.attempt, c.epoch, c.first_start, c.queue, c.name, c.params, c.headers,
      cps.list, cps.bytes, v_now, null::timestamptz
    from candidates c,
      -- [name, value, value is SQL NULL]: a step that returned undefined stays undefined. Their
      -- bytes: the worker refuses a step that would take them over maxCheckpointBytesPerTask.
      lateral (select coalesce(json_agg(json_build_array(cp.name, cp.value, cp.value is null)), '[]'::json) as list,
          coalesce(sum(octet_length(cp.value::text)), 0)::bigint as bytes
        from ${s}.checkpoints cp where cp.task_id = c.task_id) cps;
    get diagnostics v_count = row_count;
    v_claimed := v_claimed + v_count;
    if v_k < v_n and v_count >= v_quota then v_full := v_full || v_queue; end if;
  end loop;

  if v_claimed < p_limit then
    foreach v_queue in array p_queues loop
      v_next := least(v_next, (select min(r.available_at) from ${s}.runs r
        where r.queue = v_queue and r.state in (${PENDING}, ${SLEEPING}) and r.available_at < 'infinity'));
    end loop;
    return query select null::uuid, null::uuid, null::integer, null::integer, null::boolean, null::text, null::text,
      null::json, null::json, null::json, null::bigint, v_now, v_next;
  end if;
end $$;
`;
}

function transitionsSql(s: string, schema: string): string {
  const { wakeup } = channelsOf(schema);
  const fence = `${s}._fence(p_task, p_run, p_worker, p_epoch, v_now)`;
  return `
create or replace function ${s}.heartbeat(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_lease_ms double precision)
returns text language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${fence};
begin
  if v_fence <> 'ok' then return v_fence; end if;
  perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
  return 'ok';
end $$;

create or replace function ${s}.fail_run(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_error jsonb, p_final boolean)
returns text language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${fence};
begin
  if v_fence <> 'ok' then return v_fence; end if;
  perform ${s}._fail(p_task, p_run, p_error, p_final, v_now);
  return 'ok';
end $$;

-- Puts the run back without using an attempt. p_first_start: the claim (of this epoch) was the
-- task's first start; it is undone on the task, so that a worker without the handler neither
-- disarms maxDelayMs nor starts the maxDurationMs clock (the run keeps its started_at: it was
-- claimed).
create or replace function ${s}.defer_run(p_task uuid, p_run uuid, p_worker text, p_epoch integer,
  p_delay_ms double precision, p_first_start boolean)
returns text language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${fence};
  v_queue text;
begin
  if v_fence <> 'ok' then return v_fence; end if;
  update ${s}.runs set state = ${PENDING}, worker_id = null, lease_expires_at = null,
    available_at = v_now + ${s}._ms(p_delay_ms)
  where id = p_run returning queue into v_queue;
  update ${s}.tasks t set state = ${PENDING}, updated_at = v_now,
    first_started_at = case when p_first_start then null else t.first_started_at end,
    -- Before its first start a task's deadline is maxDelayMs after its spawn (none after retry()).
    cancel_at = case when not p_first_start then t.cancel_at
      when t.attempts = 1 then t.created_at + ${s}._ms(${s}._num(t.cancellation->'maxDelayMs')) end
  where t.id = p_task;
  if p_delay_ms <= 0 then perform pg_notify('${wakeup}', v_queue); end if;
  return 'ok';
end $$;

-- The runs this worker holds in the database ('running', its worker id, lease not expired) that
-- it is not executing (p_keep): a claim whose answer never came back. Put back like defer_run
-- with no delay: no attempt is used. A run whose lease expired is left to the sweep (a failed
-- attempt, LeaseExpired), as for a worker that died. Returns how many.
create or replace function ${s}.release_runs(p_worker text, p_keep uuid[])
returns integer language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_row record;
  v_released integer := 0;
  v_queues text[] := '{}';
begin
  for v_row in
    select r.id, r.task_id, r.queue from ${s}.runs r
    where r.state = ${RUNNING} and r.worker_id = p_worker and r.lease_expires_at > v_now
      and r.id <> all(coalesce(p_keep, '{}'))
    order by r.task_id
  loop
    perform 1 from ${s}.tasks t where t.id = v_row.task_id for update;
    update ${s}.runs r set state = ${PENDING}, worker_id = null, lease_expires_at = null, available_at = v_now
    where r.id = v_row.id and r.state = ${RUNNING} and r.worker_id = p_worker and r.lease_expires_at > v_now;
    continue when not found;
    update ${s}.tasks t set state = ${PENDING}, updated_at = v_now where t.id = v_row.task_id and t.state = ${RUNNING};
    v_released := v_released + 1;
    if not (v_row.queue = any(v_queues)) then v_queues := v_queues || v_row.queue; end if;
  end loop;
  perform pg_notify('${wakeup}', q) from unnest(v_queues) q;
  return v_released;
end $$;

create or replace function ${s}.sleep_until(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_name text,
  p_wake_at timestamptz, p_duration_ms double precision, p_attempt integer, p_lease_ms double precision)
returns table (outcome text, wake_at timestamptz) language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${fence};
  v_wake timestamptz;
begin
  if v_fence <> 'ok' then return query select v_fence, null::timestamptz; return; end if;
  select (cp.value->>'wakeAt')::timestamptz into v_wake from ${s}.checkpoints cp
  where cp.task_id = p_task and cp.name = p_name;
  if v_wake is null then
    v_wake := coalesce(p_wake_at, v_now + ${s}._ms(p_duration_ms));
    perform ${s}._checkpoint(p_task, p_name, json_build_object('wakeAt', v_wake), p_attempt, v_now);
  end if;
  if v_wake <= v_now then
    perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
    return query select 'continue'::text, v_wake;
    return;
  end if;
  update ${s}.runs set state = ${SLEEPING}, available_at = v_wake, lease_expires_at = null,
    wake_event = null
  where id = p_run;
  update ${s}.tasks set state = ${SLEEPING}, updated_at = v_now where id = p_task;
  return query select 'suspended'::text, v_wake;
end $$;

create or replace function ${s}.await_event(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_queue text,
  p_event text, p_step text, p_timeout_ms double precision, p_attempt integer, p_lease_ms double precision)
returns table (outcome text, value json) language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_event record;
  v_fence text;
  v_value json;
  v_timeout_at timestamptz;
  v_has_wait boolean;
begin
  loop
    insert into ${s}.events (queue, name, payload, emitted_at, created_at)
    values (p_queue, p_event, null, null, v_now) on conflict do nothing;
    select e.payload, e.emitted_at into v_event from ${s}.events e
    where e.queue = p_queue and e.name = p_event for share;
    -- Not found: cleanup() deleted the placeholder in between; make it again.
    exit when found;
  end loop;

  v_fence := ${fence};
  if v_fence <> 'ok' then return query select v_fence, null::json; return; end if;

  select cp.value into v_value from ${s}.checkpoints cp where cp.task_id = p_task and cp.name = p_step;
  if found then
    delete from ${s}.waits w where w.run_id = p_run and w.step_name = p_step;
    return query select 'checkpoint'::text, v_value;
    return;
  end if;

  select w.timeout_at, true into v_timeout_at, v_has_wait from ${s}.waits w
  where w.run_id = p_run and w.step_name = p_step;
  if v_has_wait then
    -- Resumed by the timer: the deadline decides, even if the event came in since.
    v_value := case when v_timeout_at <= v_now then json_build_object('timedOut', true) end;
  else
    v_timeout_at := v_now + ${s}._ms(p_timeout_ms);
  end if;
  if v_value is null and v_event.emitted_at is not null then
    v_value := json_build_object('payload', v_event.payload);
  end if;
  if v_value is null and v_timeout_at <= v_now then
    v_value := json_build_object('timedOut', true);
  end if;

  if v_value is not null then
    delete from ${s}.waits w where w.run_id = p_run and w.step_name = p_step;
    perform ${s}._checkpoint(p_task, p_step, v_value, p_attempt, v_now);
    perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
    return query select 'checkpoint'::text, v_value;
    return;
  end if;

  insert into ${s}.waits (run_id, step_name, task_id, queue, event_name, timeout_at, created_at)
  values (p_run, p_step, p_task, p_queue, p_event, v_timeout_at, v_now)
  on conflict (run_id, step_name) do nothing;
  update ${s}.runs set state = ${SLEEPING}, available_at = coalesce(v_timeout_at, 'infinity'),
    lease_expires_at = null, wake_event = p_event
  where id = p_run;
  update ${s}.tasks set state = ${SLEEPING}, updated_at = v_now where id = p_task;
  return query select 'suspended'::text, null::json;
end $$;

create or replace function ${s}.emit_from_task(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_name text,
  p_queue text, p_event text, p_payload json, p_attempt integer, p_lease_ms double precision)
returns text language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${fence};
begin
  if v_fence <> 'ok' then return v_fence; end if;
  perform 1 from ${s}.checkpoints where task_id = p_task and name = p_name;
  if not found then
    perform ${s}.emit_event(p_queue, p_event, p_payload);
    perform ${s}._checkpoint(p_task, p_name, json_build_object('emitted', true), p_attempt, v_now);
  end if;
  perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
  return 'ok';
end $$;
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
end $$;
`;
}
