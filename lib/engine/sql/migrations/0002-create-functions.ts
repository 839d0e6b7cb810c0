import type { MigrationInterface, QueryRunner } from 'typeorm';
import { channelsOf } from '../channels.js';
import { quoteSchema } from '../schema-name.js';

/**
 * Every lifecycle transition is one function, so it is one round trip and one transaction.
 *
 * Locking rules (they are what keeps this free of deadlocks and double execution):
 * - A task's row lock guards the task and all of its runs, checkpoints and waits; every
 *   transition takes it before touching them. Claiming locks run and task with SKIP LOCKED
 *   and so never waits.
 * - Events before tasks: await and emit lock the event row first (await FOR SHARE on a
 *   placeholder, emit by its upsert), then tasks in id order. That is what makes a racing
 *   await and emit see each other: either the waiter finds the payload or the emitter finds
 *   the wait.
 * - Writes from a worker are fenced: they succeed only while the run is `running`, owned by
 *   that worker, and its lease has not expired. Otherwise they change nothing and say why.
 */
export class DurableCreateFunctions1764000000002 implements MigrationInterface {
  readonly name = 'DurableCreateFunctions1764000000002';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(functionsSql(quoteSchema(this.schema), this.schema));
  }

  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
      drop function if exists ${s}.spawn_task, ${s}.claim_tasks, ${s}.heartbeat, ${s}.fail_run, ${s}.defer_run, ${s}.sleep_until, ${s}.await_event,
        ${s}.emit_event, ${s}.emit_from_task, ${s}.cancel_task, ${s}.retry_task,
        ${s}._fence, ${s}._fence_outcome, ${s}._renew_lease, ${s}._checkpoint, ${s}._fail, ${s}._cancel,
        ${s}._ms, ${s}._backoff, ${s}.now;
    `);
  }
}

function functionsSql(s: string, schema: string): string {
  const channels = channelsOf(schema);
  const channel = `'${channels.wakeup}'`;
  const cancelChannel = `'${channels.cancel}'`;
  return `
create or replace function ${s}.now() returns timestamptz language sql volatile as $$
  select case when current_setting('durable.test_clock', true) = 'on'
    then clock_timestamp() + coalesce((select offset_ms from ${s}.test_clock), 0) * interval '1 millisecond'
    else clock_timestamp() end
$$;

-- Milliseconds to an interval. Any non-negative duration is valid; past a century it is
-- capped, which keeps the timestamp arithmetic in range.
create or replace function ${s}._ms(p_ms double precision) returns interval language sql immutable as $$
  select case when p_ms is not null then least(greatest(p_ms, 0), 3.15e12) * interval '1 millisecond' end
$$;

-- base * factor^(attempt - 1), computed in logarithms so that it cannot overflow.
create or replace function ${s}._backoff(p_base double precision, p_factor double precision, p_attempt integer)
returns double precision language sql immutable as $$
  select case when p_base <= 0 then 0
    else exp(least(ln(p_base) + (p_attempt - 1) * ln(p_factor), ln(3.15e12))) end
$$;

-- The fence rule, written once: a worker may write for a run only while its task is not
-- cancelled and the run is running, owned by that worker, with an unexpired lease.
create or replace function ${s}._fence_outcome(p_task_state text, p_run_state text, p_run_worker text,
  p_lease_expires_at timestamptz, p_worker text, p_now timestamptz)
returns text language sql immutable as $$
  select case
    when p_task_state = 'cancelled' then 'cancelled'
    when p_run_state = 'running' and p_run_worker = p_worker and p_lease_expires_at > p_now then 'ok'
    else 'lost' end
$$;

-- Locks the task and says whether this worker may still write for this run.
create or replace function ${s}._fence(p_task uuid, p_run uuid, p_worker text, p_now timestamptz)
returns text language plpgsql as $$
declare
  v_task_state text;
  v_run record;
begin
  select state into v_task_state from ${s}.tasks where id = p_task for update;
  if not found then return 'lost'; end if;
  select state, worker_id, lease_expires_at into v_run from ${s}.runs where id = p_run;
  return ${s}._fence_outcome(v_task_state, v_run.state, v_run.worker_id, v_run.lease_expires_at, p_worker, p_now);
end $$;

create or replace function ${s}._renew_lease(p_run uuid, p_now timestamptz, p_lease_ms double precision)
returns void language sql as $$
  update ${s}.runs set lease_expires_at = p_now + ${s}._ms(p_lease_ms) where id = p_run
$$;

-- Records a checkpoint unless one of that name exists (callers hold the task lock).
create or replace function ${s}._checkpoint(p_task uuid, p_name text, p_value json, p_attempt integer,
  p_now timestamptz)
returns void language sql as $$
  insert into ${s}.checkpoints (task_id, name, value, attempt, created_at)
  values (p_task, p_name, p_value, p_attempt, p_now)
  on conflict (task_id, name) do nothing
$$;

create or replace function ${s}._cancel(p_task uuid, p_now timestamptz, p_reason jsonb)
returns void language plpgsql as $$
begin
  update ${s}.tasks set state = 'cancelled', error = p_reason, cancel_at = null,
    finished_at = p_now, updated_at = p_now
  where id = p_task;
  update ${s}.runs set state = 'cancelled', lease_expires_at = null, finished_at = p_now
  where task_id = p_task and state in ('pending', 'running', 'sleeping');
  delete from ${s}.waits where task_id = p_task;
  -- Tells a worker running it to stop at its next context call, without a round trip.
  perform pg_notify(${cancelChannel}, p_task::text);
end $$;

-- Fails a run whose task is already locked; schedules the next attempt when one is allowed.
create or replace function ${s}._fail(p_task uuid, p_run uuid, p_error jsonb, p_final boolean, p_now timestamptz)
returns void language plpgsql as $$
declare
  v_task record;
  v_attempt integer;
  v_delay_ms double precision;
  v_at timestamptz;
  v_run uuid;
begin
  select * into v_task from ${s}.tasks where id = p_task;
  update ${s}.runs set state = 'failed', error = p_error, lease_expires_at = null, finished_at = p_now
  where id = p_run returning attempt into v_attempt;
  delete from ${s}.waits where run_id = p_run;

  if p_final or v_task.retry->>'kind' = 'none' or v_attempt >= v_task.max_attempts then
    update ${s}.tasks set state = 'failed', error = p_error, cancel_at = null,
      finished_at = p_now, updated_at = p_now
    where id = p_task;
    return;
  end if;

  v_delay_ms := case v_task.retry->>'kind'
    when 'fixed' then (v_task.retry->>'delayMs')::double precision
    when 'exponential' then least(
      ${s}._backoff((v_task.retry->>'baseDelayMs')::double precision,
        coalesce((v_task.retry->>'factor')::double precision, 2), v_attempt),
      coalesce((v_task.retry->>'maxDelayMs')::double precision, 'Infinity'))
    else 0
  end;
  v_at := p_now + ${s}._ms(v_delay_ms);

  if v_task.first_started_at is not null and v_task.cancellation ? 'maxDurationMs'
     and v_at >= v_task.first_started_at
       + ${s}._ms((v_task.cancellation->>'maxDurationMs')::double precision) then
    perform ${s}._cancel(p_task, p_now, jsonb_build_object('name', 'TaskCancelled',
      'message', 'cancelled by policy: the next attempt would start after maxDurationMs',
      'lastError', p_error));
    return;
  end if;

  v_run := gen_random_uuid();
  insert into ${s}.runs (id, task_id, queue, attempt, state, available_at, created_at)
  values (v_run, p_task, v_task.queue, v_attempt + 1, 'pending', v_at, p_now);
  update ${s}.tasks set state = 'pending', attempts = v_attempt + 1, run_id = v_run,
    error = p_error, updated_at = p_now
  where id = p_task;
  if v_at <= p_now then perform pg_notify(${channel}, v_task.queue); end if;
end $$;

create or replace function ${s}.spawn_task(
  p_queue text, p_name text, p_params json, p_headers json, p_max_attempts integer,
  p_retry jsonb, p_cancellation jsonb, p_idempotency_key text, p_delay_ms double precision,
  p_run_at timestamptz)
returns table (task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_task uuid := gen_random_uuid();
  v_run uuid := gen_random_uuid();
  v_available timestamptz;
  v_inserted uuid;
begin
  v_available := greatest(v_now, coalesce(p_run_at, v_now + ${s}._ms(coalesce(p_delay_ms, 0))));
  insert into ${s}.queues (name, created_at) values (p_queue, v_now) on conflict do nothing;
  insert into ${s}.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry,
    cancellation, idempotency_key, run_id, cancel_at, created_at, updated_at)
  values (v_task, p_queue, p_name, p_params, p_headers, 'pending', 1, p_max_attempts, p_retry,
    p_cancellation, p_idempotency_key, v_run,
    v_now + ${s}._ms((p_cancellation->>'maxDelayMs')::double precision),
    v_now, v_now)
  on conflict (queue, idempotency_key) where idempotency_key is not null do nothing
  returning id into v_inserted;

  if v_inserted is null then
    return query
      select t.id, r.id, 1, false
      from ${s}.tasks t join ${s}.runs r on r.task_id = t.id and r.attempt = 1
      where t.queue = p_queue and t.idempotency_key = p_idempotency_key;
    return;
  end if;

  insert into ${s}.runs (id, task_id, queue, attempt, state, available_at, created_at)
  values (v_run, v_task, p_queue, 1, 'pending', v_available, v_now);
  if v_available <= v_now then perform pg_notify(${channel}, p_queue); end if;
  return query select v_task, v_run, 1, true;
end $$;

-- Sweeps (bounded by p_limit each) unless p_sweep is false, then claims up to p_limit runs. When fewer than p_limit
-- runs were claimed it adds one row with run_id null that says when the next run is due.
-- Queues are visited one at a time: with one queue per scan, the indexes give rows in order
-- and the LIMIT stops the scan early (an "= any(array)" scan would sort every pending row).
create or replace function ${s}.claim_tasks(p_queues text[], p_worker text, p_limit integer,
  p_lease_ms double precision, p_sweep boolean default true)
returns table (run_id uuid, task_id uuid, attempt integer, queue text, name text, params json,
  headers json, checkpoints json, db_now timestamptz, next_due_at timestamptz)
language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_queue text;
  v_row record;
  v_swept integer := 0;
  v_claimed integer := 0;
  v_count integer;
  v_next timestamptz;
begin
  -- The sweeps are skipped when the caller swept a moment ago (they are not urgent).
  foreach v_queue in array case when p_sweep then p_queues else '{}'::text[] end loop
    for v_row in
      select t.id, t.first_started_at from ${s}.tasks t
      where t.queue = v_queue and t.cancel_at <= v_now and t.state in ('pending', 'running', 'sleeping')
      order by t.cancel_at limit p_limit - v_swept
      for update skip locked
    loop
      perform ${s}._cancel(v_row.id, v_now, jsonb_build_object('name', 'TaskCancelled',
        'message', case when v_row.first_started_at is null
          then 'cancelled by policy: not started within maxDelayMs'
          else 'cancelled by policy: not finished within maxDurationMs' end));
      v_swept := v_swept + 1;
    end loop;
    exit when v_swept >= p_limit;
  end loop;

  v_swept := 0;
  foreach v_queue in array case when p_sweep then p_queues else '{}'::text[] end loop
    for v_row in
      select r.id, r.task_id, r.worker_id, r.lease_expires_at, r.attempt from ${s}.runs r
      where r.queue = v_queue and r.state = 'running' and r.lease_expires_at <= v_now
      order by r.lease_expires_at limit p_limit - v_swept
    loop
      perform 1 from ${s}.tasks where id = v_row.task_id for update skip locked;
      continue when not found;
      perform 1 from ${s}.runs where id = v_row.id and state = 'running' and lease_expires_at <= v_now;
      continue when not found;
      perform ${s}._fail(v_row.task_id, v_row.id, jsonb_build_object('name', 'LeaseExpired',
        'message', 'the worker did not finish or renew its lease in time',
        'workerId', v_row.worker_id, 'attempt', v_row.attempt, 'leaseExpiredAt', v_row.lease_expires_at),
        false, v_now);
      v_swept := v_swept + 1;
    end loop;
    exit when v_swept >= p_limit;
  end loop;

  foreach v_queue in array p_queues loop
    exit when v_claimed >= p_limit;
    return query
    with candidates as (
      select r.id as run_id, r.task_id, r.attempt, t.queue, t.name, t.params, t.headers
      from ${s}.runs r join ${s}.tasks t on t.id = r.task_id
      where r.queue = v_queue and r.state in ('pending', 'sleeping') and r.available_at <= v_now
        and t.state in ('pending', 'sleeping')
      order by r.available_at, r.id
      limit p_limit - v_claimed
      for update of r, t skip locked
    ), claimed_runs as (
      update ${s}.runs r set state = 'running', worker_id = p_worker,
        lease_expires_at = v_now + ${s}._ms(p_lease_ms),
        started_at = coalesce(r.started_at, v_now), wake_event = null
      from candidates c where r.id = c.run_id
    ), claimed_tasks as (
      update ${s}.tasks t set state = 'running', updated_at = v_now,
        first_started_at = coalesce(t.first_started_at, v_now),
        cancel_at = case
          when t.first_started_at is not null then t.cancel_at
          else v_now + ${s}._ms((t.cancellation->>'maxDurationMs')::double precision) end
      from candidates c where t.id = c.task_id
    )
    -- From the candidates alone: joining the two update CTEs would be a quadratic nested loop.
    select c.run_id, c.task_id, c.attempt, c.queue, c.name, c.params, c.headers,
      -- [name, value, value is SQL NULL]: a step that returned undefined stays undefined.
      (select coalesce(json_agg(json_build_array(cp.name, cp.value, cp.value is null)), '[]'::json)
         from ${s}.checkpoints cp where cp.task_id = c.task_id),
      v_now, null::timestamptz
    from candidates c;
    get diagnostics v_count = row_count;
    v_claimed := v_claimed + v_count;
  end loop;

  if v_claimed < p_limit then
    foreach v_queue in array p_queues loop
      v_next := least(v_next, (select min(r.available_at) from ${s}.runs r
        where r.queue = v_queue and r.state in ('pending', 'sleeping') and r.available_at < 'infinity'));
    end loop;
    return query select null::uuid, null::uuid, null::integer, null::text, null::text, null::json,
      null::json, null::json, v_now, v_next;
  end if;
end $$;

create or replace function ${s}.heartbeat(p_task uuid, p_run uuid, p_worker text, p_lease_ms double precision)
returns text language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${s}._fence(p_task, p_run, p_worker, v_now);
begin
  if v_fence <> 'ok' then return v_fence; end if;
  perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
  return 'ok';
end $$;

create or replace function ${s}.fail_run(p_task uuid, p_run uuid, p_worker text, p_error jsonb, p_final boolean)
returns text language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${s}._fence(p_task, p_run, p_worker, v_now);
begin
  if v_fence <> 'ok' then return v_fence; end if;
  perform ${s}._fail(p_task, p_run, p_error, p_final, v_now);
  return 'ok';
end $$;

-- Puts a claimed run back without using up an attempt (no handler here for its task).
create or replace function ${s}.defer_run(p_task uuid, p_run uuid, p_worker text, p_delay_ms double precision)
returns text language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${s}._fence(p_task, p_run, p_worker, v_now);
begin
  if v_fence <> 'ok' then return v_fence; end if;
  update ${s}.runs set state = 'pending', worker_id = null, lease_expires_at = null,
    available_at = v_now + ${s}._ms(p_delay_ms)
  where id = p_run;
  update ${s}.tasks set state = 'pending', updated_at = v_now where id = p_task;
  return 'ok';
end $$;

-- Returns 'continue' (the wake time has passed) or 'suspended', or the fence's refusal.
create or replace function ${s}.sleep_until(p_task uuid, p_run uuid, p_worker text, p_name text,
  p_wake_at timestamptz, p_duration_ms double precision, p_attempt integer, p_lease_ms double precision)
returns table (outcome text, wake_at timestamptz) language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${s}._fence(p_task, p_run, p_worker, v_now);
  v_wake timestamptz;
begin
  if v_fence <> 'ok' then return query select v_fence, null::timestamptz; return; end if;
  select (value->>'wakeAt')::timestamptz into v_wake from ${s}.checkpoints
  where task_id = p_task and name = p_name;
  if v_wake is null then
    v_wake := coalesce(p_wake_at, v_now + ${s}._ms(p_duration_ms));
    perform ${s}._checkpoint(p_task, p_name, json_build_object('wakeAt', v_wake), p_attempt, v_now);
  end if;
  if v_wake <= v_now then
    perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
    return query select 'continue'::text, v_wake;
    return;
  end if;
  update ${s}.runs set state = 'sleeping', available_at = v_wake, lease_expires_at = null,
    wake_event = null
  where id = p_run;
  update ${s}.tasks set state = 'sleeping', updated_at = v_now where id = p_task;
  return query select 'suspended'::text, v_wake;
end $$;

-- Returns ('checkpoint', value) when the outcome is known: value is {"payload": ...} or
-- {"timedOut": true}; else 'suspended', or the fence's refusal.
create or replace function ${s}.await_event(p_task uuid, p_run uuid, p_worker text, p_queue text,
  p_event text, p_step text, p_timeout_ms double precision, p_attempt integer, p_lease_ms double precision)
returns table (outcome text, value json) language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_event record;
  v_fence text;
  v_value json;
  v_timeout_at timestamptz;
  v_has_wait boolean;
begin
  insert into ${s}.events (queue, name, payload, emitted_at, created_at)
  values (p_queue, p_event, null, null, v_now) on conflict do nothing;
  select payload, emitted_at into v_event from ${s}.events
  where queue = p_queue and name = p_event for share;

  v_fence := ${s}._fence(p_task, p_run, p_worker, v_now);
  if v_fence <> 'ok' then return query select v_fence, null::json; return; end if;

  select cp.value into v_value from ${s}.checkpoints cp where cp.task_id = p_task and cp.name = p_step;
  if found then
    delete from ${s}.waits where run_id = p_run and step_name = p_step;
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
    delete from ${s}.waits where run_id = p_run and step_name = p_step;
    perform ${s}._checkpoint(p_task, p_step, v_value, p_attempt, v_now);
    perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
    return query select 'checkpoint'::text, v_value;
    return;
  end if;

  insert into ${s}.waits (run_id, step_name, task_id, queue, event_name, timeout_at, created_at)
  values (p_run, p_step, p_task, p_queue, p_event, v_timeout_at, v_now)
  on conflict (run_id, step_name) do nothing;
  update ${s}.runs set state = 'sleeping', available_at = coalesce(v_timeout_at, 'infinity'),
    lease_expires_at = null, wake_event = p_event
  where id = p_run;
  update ${s}.tasks set state = 'sleeping', updated_at = v_now where id = p_task;
  return query select 'suspended'::text, null::json;
end $$;

-- First emit wins. Returns how many waiting runs it woke, or null when the event had already
-- been emitted (and nothing changed).
create or replace function ${s}.emit_event(p_queue text, p_event text, p_payload json)
returns integer language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_emitted boolean;
  v_wait record;
  v_woken integer := 0;
begin
  insert into ${s}.events (queue, name, payload, emitted_at, created_at)
  values (p_queue, p_event, p_payload, v_now, v_now)
  on conflict (queue, name) do update set payload = excluded.payload, emitted_at = excluded.emitted_at
  where ${s}.events.emitted_at is null
  returning true into v_emitted;
  if v_emitted is null then return null; end if;

  for v_wait in
    select w.run_id, w.task_id, w.step_name from ${s}.waits w
    join ${s}.tasks t on t.id = w.task_id
    where w.queue = p_queue and w.event_name = p_event
    order by w.task_id
    for update of t
  loop
    -- Re-read under the task lock: only a run still asleep on this wait, before its deadline, wakes.
    perform 1 from ${s}.waits w join ${s}.runs r on r.id = w.run_id
    where w.run_id = v_wait.run_id and w.step_name = v_wait.step_name
      and r.state = 'sleeping' and (w.timeout_at is null or w.timeout_at > v_now);
    continue when not found;
    perform ${s}._checkpoint(v_wait.task_id, v_wait.step_name, json_build_object('payload', p_payload),
      (select r.attempt from ${s}.runs r where r.id = v_wait.run_id), v_now);
    delete from ${s}.waits where run_id = v_wait.run_id and step_name = v_wait.step_name;
    update ${s}.runs set state = 'pending', available_at = v_now, wake_event = null where id = v_wait.run_id;
    update ${s}.tasks set state = 'pending', updated_at = v_now where id = v_wait.task_id;
    v_woken := v_woken + 1;
  end loop;
  if v_woken > 0 then perform pg_notify(${channel}, p_queue); end if;
  return v_woken;
end $$;

-- ctx.emitEvent: the emit and its checkpoint commit together, so a replay does not emit again.
create or replace function ${s}.emit_from_task(p_task uuid, p_run uuid, p_worker text, p_name text,
  p_queue text, p_event text, p_payload json, p_attempt integer, p_lease_ms double precision)
returns text language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_fence text := ${s}._fence(p_task, p_run, p_worker, v_now);
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

-- Returns 'cancelled', 'terminal' (nothing to do) or 'not_found'.
create or replace function ${s}.cancel_task(p_task uuid)
returns text language plpgsql as $$
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

-- A new attempt for a failed or cancelled task, keeping its checkpoints. Returns the task's
-- state before the call ('not_found' if there is no such task); only failed and cancelled change.
create or replace function ${s}.retry_task(p_task uuid)
returns text language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
  v_task record;
  v_run uuid := gen_random_uuid();
begin
  select * into v_task from ${s}.tasks where id = p_task for update;
  if not found then return 'not_found'; end if;
  if v_task.state not in ('failed', 'cancelled') then return v_task.state; end if;
  insert into ${s}.runs (id, task_id, queue, attempt, state, available_at, created_at)
  values (v_run, p_task, v_task.queue, v_task.attempts + 1, 'pending', v_now, v_now);
  update ${s}.tasks set state = 'pending', attempts = v_task.attempts + 1, run_id = v_run,
    max_attempts = greatest(v_task.max_attempts, v_task.attempts + 1), error = null, result = null,
    cancel_at = null, first_started_at = null, finished_at = null, updated_at = v_now
  where id = p_task;
  perform pg_notify(${channel}, v_task.queue);
  return v_task.state;
end $$;
`;
}
