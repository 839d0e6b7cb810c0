import type { MigrationInterface, QueryRunner } from 'typeorm';
import { channelsOf } from '../channels.js';
import { quoteSchema } from '../schema-name.js';
import { pinSearchPath } from './0004-execution-fencing.js';

/**
 * Spawns that share a statement never wait for another transaction, so one blocked spawn
 * cannot stall (or fail) the others of its batch.
 *
 * A spawn waits for another transaction only for a row that transaction inserted and has not
 * committed: a task with the same idempotency key, or the first row of a new queue.
 * - Keys: a transaction that inserts a task with a key holds an advisory lock on it until it
 *   ends (`spawn_task` waits for it). `spawn_batch_nowait` only tries the lock; a key it cannot
 *   lock at once comes back 'contended', for the client to spawn on its own. A key that is
 *   already taken (committed) needs no lock. The batch holds its locks until it commits, so it
 *   takes at most 64 (the default max_locks_per_transaction): later new keys come back 'deferred',
 *   for the next batch.
 * - Queues: the batch inserts a queue's row only when it does not see one, and then waits at most
 *   10 ms (`lock_timeout`, in a subtransaction of its own) before calling its spawns 'contended'.
 * `spawn_task` takes the key first, then the queue: a spawn waiting for a key holds nothing that
 * other spawns need. `spawn_batch` (a statement that waits) stays for clients of older releases.
 */
export class DurableSpawnIsolation1764000000005 implements MigrationInterface {
  readonly name = 'DurableSpawnIsolation1764000000005';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    const channel = `'${channelsOf(this.schema).wakeup}'`;
    await runner.query(`
-- The advisory lock on a queue's idempotency key (the schema name makes it this schema's).
create or replace function ${s}._key_lock(p_queue text, p_key text) returns bigint
language sql immutable as $$
  select hashtextextended('${this.schema}:' || length(p_queue)::text || ':' || p_queue || p_key, 0)
$$;

-- The task spawned with this key, and its first run (none when p_key is null).
create or replace function ${s}._spawned_with_key(p_queue text, p_key text)
returns table (task_id uuid, run_id uuid, attempt integer, created boolean)
language sql stable as $$
  select t.id, r.id, 1, false
  from ${s}.tasks t join ${s}.runs r on r.task_id = t.id and r.attempt = 1
  where t.queue = p_queue and t.idempotency_key = p_key
$$;

-- Inserts the task and its first run; the queue's row exists. A key already taken gives that task.
create or replace function ${s}._spawn_insert(
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
  insert into ${s}.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry,
    cancellation, idempotency_key, run_id, cancel_at, created_at, updated_at)
  values (v_task, p_queue, p_name, p_params, p_headers, 'pending', 1, p_max_attempts, p_retry,
    p_cancellation, p_idempotency_key, v_run,
    v_now + ${s}._ms((p_cancellation->>'maxDelayMs')::double precision),
    v_now, v_now)
  on conflict (queue, idempotency_key) where idempotency_key is not null do nothing
  returning id into v_inserted;

  if v_inserted is null then
    return query select * from ${s}._spawned_with_key(p_queue, p_idempotency_key);
    return;
  end if;

  insert into ${s}.runs (id, task_id, queue, attempt, state, available_at, created_at)
  values (v_run, v_task, p_queue, 1, 'pending', v_available, v_now);
  if v_available <= v_now then perform pg_notify(${channel}, p_queue); end if;
  return query select v_task, v_run, 1, true;
end $$;

-- A spawn on its own: waits for a transaction inserting the same key, then for one inserting the
-- queue's first row.
create or replace function ${s}.spawn_task(
  p_queue text, p_name text, p_params json, p_headers json, p_max_attempts integer,
  p_retry jsonb, p_cancellation jsonb, p_idempotency_key text, p_delay_ms double precision,
  p_run_at timestamptz)
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
    p_retry, p_cancellation, p_idempotency_key, p_delay_ms, p_run_at);
end $$;

-- Inserts the queue's row unless another transaction holding one makes it wait over 10 ms.
create or replace function ${s}._try_insert_queue(p_queue text) returns boolean
language plpgsql set lock_timeout = '10ms' as $$
begin
  insert into ${s}.queues (name, created_at) values (p_queue, ${s}.now()) on conflict do nothing;
  return true;
exception when lock_not_available then
  return false;
end $$;

-- p_spawns as spawn_batch takes it. One row per spawn, in order; outcome 'ok' (the task), or,
-- without a task, 'contended' (it would wait for another transaction) or 'deferred' (too many
-- key locks in this statement).
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
        (v.sp->6)::jsonb, v_key, (v.sp->>8)::double precision, (v.sp->>9)::timestamptz) x;
  end loop;
end $$;
${pinSearchPath(this.schema)}
`);
  }

  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    const channel = `'${channelsOf(this.schema).wakeup}'`;
    // spawn_task as 0002 created it.
    await runner.query(`
drop function if exists ${s}.spawn_batch_nowait, ${s}._try_insert_queue;
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
drop function if exists ${s}._spawn_insert, ${s}._spawned_with_key, ${s}._key_lock;
`);
  }
}
