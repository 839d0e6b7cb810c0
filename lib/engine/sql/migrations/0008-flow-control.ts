import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { channelsOf } from '../channels.js';
import { quoteSchema } from '../schema-name.js';
import { DurableExecutionFencing1764000000004, PINNED_SEARCH_PATH, pinSearchPath } from './0004-execution-fencing.js';
import { DurableSpawnIsolation1764000000005 } from './0005-spawn-isolation.js';
import { DurableChildTasks1764000000006 } from './0006-child-tasks.js';
import { claimSql } from './0008-flow-control.claim.js';

/**
 * Flow control and schedules (issue 15).
 *
 * - Priorities: `tasks.priority` and `runs.priority` (copied at spawn; a later attempt's run
 *   copies it from its task by trigger). The claim index becomes (queue, priority desc,
 *   available_at, id): a claim walks the priority levels present in the queue from the highest
 *   (one index probe each) and takes the due runs of each level in spawn order (an index range).
 * - Limits: `flow_limits` (per queue and task name: `concurrency`, `rate_max` per `rate_per_ms`),
 *   upserted by every worker at startup from its `@DurableTask` options. A queue without a limit
 *   is claimed as before; a queue with one takes the limited path of `claim_tasks` (see the
 *   claim file). `tasks.concurrency_key` splits a name's concurrency limit by key.
 * - `flow_starts`: the recent starts of rate-limited tasks, pruned by the claim.
 * - Retry-after: `_fail` reads `retryAt` / `retryAfterMs` from the recorded error (set by the
 *   worker for `RetryAfterError`) and starts the next attempt no earlier than that.
 * - Schedules: `schedules`, one row per schedule with its next tick; `fire_schedule` spawns the
 *   tick's task (idempotency key from the schedule name and tick time) and moves the row on, under
 *   the row's lock (SKIP LOCKED), only if the row still expects that tick.
 */
export class DurableFlowControl1764000000008 implements MigrationInterface {
  readonly name = 'DurableFlowControl1764000000008';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
alter table ${s}.tasks add column if not exists priority integer not null default 0,
  add column if not exists concurrency_key text;
alter table ${s}.runs add column if not exists priority integer not null default 0;
create index if not exists runs_claim_priority on ${s}.runs (queue, priority desc, available_at, id) where state in ('pending','sleeping');
drop index if exists ${s}.runs_claimable;

create table if not exists ${s}.flow_limits (
  queue       text not null,
  name        text not null,
  concurrency integer check (concurrency >= 1),
  rate_max    integer check (rate_max >= 1),
  rate_per_ms double precision check (rate_per_ms > 0),
  updated_at  timestamptz not null,
  primary key (queue, name)
);
create table if not exists ${s}.flow_starts (
  queue      text not null,
  name       text not null,
  started_at timestamptz not null
);
create index if not exists flow_starts_window on ${s}.flow_starts (queue, name, started_at);

create table if not exists ${s}.schedules (
  name        text primary key,
  cron        text not null,
  task_name   text not null,
  queue       text not null,
  timezone    text not null,
  params      json not null,
  next_run_at timestamptz not null,
  created_at  timestamptz not null,
  updated_at  timestamptz not null
);
create index if not exists schedules_due on ${s}.schedules (queue, next_run_at);

${functionsSql(s, this.schema)}
${claimSql(s)}
${pinSearchPath(this.schema)}
`);
  }

  /** Back to the functions of 0004-0006 (run again: they are idempotent), without the new tables and columns. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
drop trigger if exists runs_priority on ${s}.runs;
drop function if exists ${s}._run_priority(), ${s}.fire_schedule, ${s}._flow_lock, ${s}._claim_runs,
  ${s}._spawn_insert(text, text, json, json, integer, jsonb, jsonb, text, double precision, timestamptz, integer, text),
  ${s}.spawn_task(text, text, json, json, integer, jsonb, jsonb, text, double precision, timestamptz, integer, text),
  ${s}.spawn_child(uuid, uuid, text, integer, text, text, text, json, json, integer, jsonb, jsonb, text,
    double precision, timestamptz, integer, double precision, integer, text);
drop table if exists ${s}.schedules, ${s}.flow_starts, ${s}.flow_limits;
create index if not exists runs_claimable on ${s}.runs (queue, available_at, id) where state in ('pending','sleeping');
drop index if exists ${s}.runs_claim_priority;`);
    await new DurableExecutionFencing1764000000004(this.schema).up(runner);
    await new DurableSpawnIsolation1764000000005(this.schema).up(runner);
    await new DurableChildTasks1764000000006(this.schema).up(runner);
    await runner.query(`alter table ${s}.tasks drop column if exists priority, drop column if exists concurrency_key;
alter table ${s}.runs drop column if exists priority;`);
  }
}

const [PENDING, , , , FAILED] = TASK_STATES.map((state) => `'${state}'`);
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;

function functionsSql(s: string, schema: string): string {
  const { wakeup } = channelsOf(schema);
  return `
-- A run of a later attempt (_fail, retry_task) keeps its task's priority.
create or replace function ${s}._run_priority() returns trigger language plpgsql ${SET_PATH} as $$
begin
  new.priority := coalesce((select t.priority from ${s}.tasks t where t.id = new.task_id), 0);
  return new;
end $$;
drop trigger if exists runs_priority on ${s}.runs;
create trigger runs_priority before insert on ${s}.runs for each row when (new.attempt > 1)
  execute function ${s}._run_priority();

-- The advisory lock of one flow group (a concurrency group or a rate-limited name), this schema's.
create or replace function ${s}._flow_lock(p_kind text, p_queue text, p_group text) returns bigint
language sql immutable as $$
  select hashtextextended('${schema}:' || p_kind || ':' || length(p_queue)::text || ':' || p_queue || p_group, 0)
$$;

create or replace function ${s}._spawn_insert(
  p_queue text, p_name text, p_params json, p_headers json, p_max_attempts integer,
  p_retry jsonb, p_cancellation jsonb, p_idempotency_key text, p_delay_ms double precision,
  p_run_at timestamptz, p_priority integer, p_concurrency_key text)
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
  insert into ${s}.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry,
    cancellation, idempotency_key, run_id, cancel_at, created_at, updated_at, priority, concurrency_key)
  values (v_task, p_queue, p_name, p_params, p_headers, 'pending', 1, p_max_attempts, p_retry,
    p_cancellation, p_idempotency_key, v_run,
    v_now + ${s}._ms((p_cancellation->>'maxDelayMs')::double precision),
    v_now, v_now, coalesce(p_priority, 0), p_concurrency_key)
  on conflict (queue, idempotency_key) where idempotency_key is not null do nothing
  returning id into v_inserted;

  if v_inserted is null then
    return query select * from ${s}._spawned_with_key(p_queue, p_idempotency_key);
    return;
  end if;

  insert into ${s}.runs (id, task_id, queue, attempt, state, available_at, created_at, priority)
  values (v_run, v_task, p_queue, 1, 'pending', v_available, v_now, coalesce(p_priority, 0));
  if v_available <= v_now then perform pg_notify('${wakeup}', p_queue); end if;
  return query select v_task, v_run, 1, true;
end $$;

create or replace function ${s}.spawn_task(
  p_queue text, p_name text, p_params json, p_headers json, p_max_attempts integer,
  p_retry jsonb, p_cancellation jsonb, p_idempotency_key text, p_delay_ms double precision,
  p_run_at timestamptz, p_priority integer, p_concurrency_key text)
returns table (task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql as $$
begin
  if p_idempotency_key is not null then
    return query select * from ${s}._spawned_with_key(p_queue, p_idempotency_key);
    if found then return; end if;
    perform pg_advisory_xact_lock(${s}._key_lock(p_queue, p_idempotency_key));
  end if;
  insert into ${s}.queues (name, created_at) values (p_queue, ${s}.now()) on conflict do nothing;
  return query select * from ${s}._spawn_insert(p_queue, p_name, p_params, p_headers, p_max_attempts,
    p_retry, p_cancellation, p_idempotency_key, p_delay_ms, p_run_at, p_priority, p_concurrency_key);
end $$;

-- The spawn of earlier releases (and of 0003's spawn_batch, 0006's spawn_child): priority 0, no key.
-- The new signatures take no defaults, so that this one, which 0002 and 0005 create again when
-- the migrations run again, never makes a call ambiguous.
create or replace function ${s}.spawn_task(
  p_queue text, p_name text, p_params json, p_headers json, p_max_attempts integer,
  p_retry jsonb, p_cancellation jsonb, p_idempotency_key text, p_delay_ms double precision,
  p_run_at timestamptz)
returns table (task_id uuid, run_id uuid, attempt integer, created boolean)
language sql as $$
  select * from ${s}.spawn_task(p_queue, p_name, p_params, p_headers, p_max_attempts, p_retry, p_cancellation,
    p_idempotency_key, p_delay_ms, p_run_at, 0, null::text)
$$;

-- As 0005's, with priority (index 10) and concurrency key (index 11) in each spawn's array.
create or replace function ${s}.spawn_batch_nowait(p_spawns json)
returns table (i integer, task_id uuid, run_id uuid, attempt integer, created boolean, outcome text)
language plpgsql as $$
declare
  v record;
  v_key text;
  v_ready text[] := '{}';
  v_blocked text[] := '{}';
  v_locks integer := 0;
  v_skip text;
begin
  for v in select e.n::integer as n, e.sp, e.sp->>0 as queue
    from json_array_elements(p_spawns) with ordinality as e(sp, n) loop
    v_key := v.sp->>7;
    v_skip := null;
    if v_key is not null then
      return query select v.n, k.task_id, k.run_id, k.attempt, k.created, 'ok'::text
        from ${s}._spawned_with_key(v.queue, v_key) k;
      if found then continue; end if;
      if v_locks >= 64 then
        v_skip := 'deferred';
      elsif pg_try_advisory_xact_lock(${s}._key_lock(v.queue, v_key)) then
        v_locks := v_locks + 1;
      else
        v_skip := 'contended';
      end if;
    end if;
    if v_skip is null and not v.queue = any(v_ready) then
      if not v.queue = any(v_blocked)
        and (exists (select 1 from ${s}.queues q where q.name = v.queue) or ${s}._try_insert_queue(v.queue)) then
        v_ready := v_ready || v.queue;
      else
        v_blocked := v_blocked || v.queue;
        v_skip := 'contended';
      end if;
    end if;
    if v_skip is not null then
      return query select v.n, null::uuid, null::uuid, null::integer, null::boolean, v_skip;
      continue;
    end if;
    return query select v.n, x.task_id, x.run_id, x.attempt, x.created, 'ok'::text
      from ${s}._spawn_insert(v.queue, v.sp->>1, v.sp->2, v.sp->3, (v.sp->>4)::integer, (v.sp->5)::jsonb,
        (v.sp->6)::jsonb, v_key, (v.sp->>8)::double precision, (v.sp->>9)::timestamptz,
        coalesce((v.sp->>10)::integer, 0), v.sp->>11) x;
  end loop;
end $$;

-- As 0006's, with the child's priority and concurrency key.
create or replace function ${s}.spawn_child(p_task uuid, p_run uuid, p_worker text, p_epoch integer, p_step text,
  p_queue text, p_name text, p_params json, p_headers json, p_max_attempts integer, p_retry jsonb,
  p_cancellation jsonb, p_idempotency_key text, p_delay_ms double precision, p_run_at timestamptz,
  p_attempt integer, p_lease_ms double precision, p_priority integer, p_concurrency_key text)
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
    p_idempotency_key, p_delay_ms, p_run_at, p_priority, p_concurrency_key) st;
  if v_created then update ${s}.tasks set parent_task_id = p_task where id = v_child; end if;
  v_value := json_build_object('taskId', v_child, 'taskName', p_name, 'queue', p_queue);
  perform ${s}._checkpoint(p_task, p_step, v_value, p_attempt, v_now);
  perform ${s}._renew_lease(p_run, v_now, p_lease_ms);
  return query select 'checkpoint'::text, v_value;
end $$;

-- As 0006's, and a RetryAfterError's time (p_error.retryAt, or p_error.retryAfterMs from now)
-- replaces the strategy's delay; the attempt still counts against maxAttempts.
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
  if ${s}._num(p_error->'retryAfterMs') is not null then
    v_at := p_now + ${s}._ms(${s}._num(p_error->'retryAfterMs'));
  end if;
  if jsonb_typeof(p_error->'retryAt') = 'string' then
    begin
      v_at := greatest(p_now, (p_error->>'retryAt')::timestamptz);
    exception when others then null;
    end;
  end if;

  v_max_duration := ${s}._num(v_task.cancellation->'maxDurationMs');
  if v_task.first_started_at is not null and v_max_duration is not null
     and v_at >= v_task.first_started_at + ${s}._ms(v_max_duration) then
    perform ${s}._cancel(p_task, p_now, jsonb_build_object('name', 'TaskCancelled',
      'message', 'cancelled by policy: the next attempt would start after maxDurationMs',
      'lastError', p_error));
    return;
  end if;

  v_run := gen_random_uuid();
  insert into ${s}.runs (id, task_id, queue, attempt, state, available_at, created_at, priority)
  values (v_run, p_task, v_task.queue, v_attempt + 1, ${PENDING}, v_at, p_now, v_task.priority);
  update ${s}.tasks set state = ${PENDING}, attempts = v_attempt + 1, run_id = v_run,
    error = p_error, updated_at = p_now
  where id = p_task;
  if v_at <= p_now then perform pg_notify('${wakeup}', v_task.queue); end if;
end $$;

-- One tick of a schedule: when the row still expects p_expected (and no one else holds it), the
-- tick's task is spawned under the key 'durable.schedule:<name>:<tick>' and the row moves on to
-- p_next. 'fired' (created: false when the key existed), or 'skipped' (another worker has it, or
-- the row changed).
create or replace function ${s}.fire_schedule(p_name text, p_expected timestamptz, p_next timestamptz,
  p_queue text, p_task_name text, p_params json, p_headers json, p_max_attempts integer, p_retry jsonb,
  p_cancellation jsonb, p_key text)
returns table (outcome text, task_id uuid, created boolean) language plpgsql ${SET_PATH} as $$
declare
  v_task uuid;
  v_created boolean;
begin
  perform 1 from ${s}.schedules sc where sc.name = p_name and sc.next_run_at = p_expected for update skip locked;
  if not found then return query select 'skipped'::text, null::uuid, null::boolean; return; end if;
  select st.task_id, st.created into v_task, v_created
  from ${s}.spawn_task(p_queue, p_task_name, p_params, p_headers, p_max_attempts, p_retry, p_cancellation,
    p_key, null, null, 0, null::text) st;
  update ${s}.schedules set next_run_at = p_next, updated_at = ${s}.now() where name = p_name;
  return query select 'fired'::text, v_task, v_created;
end $$;
`;
}
