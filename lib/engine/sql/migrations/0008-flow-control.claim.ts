import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { PINNED_SEARCH_PATH } from './0004-execution-fencing.js';

const [PENDING, RUNNING, SLEEPING] = TASK_STATES.map((state) => `'${state}'`);
const ACTIVE = `${PENDING}, ${RUNNING}, ${SLEEPING}`;
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;
/** Transient errors are not the task's fault: they abort the claim as before, and it is tried again. */
const TRANSIENT = 'deadlock_detected or serialization_failure or lock_not_available or insufficient_resources';
/** Extra rows a pass of the limited path reads (and locks) past what it still wants. */
const PASS_SLACK = 16;

/**
 * `claim_tasks` with priorities and limits (migration 0008). Sweeps, the queues' fair shares,
 * the claim epoch, checkpoint loading and the trailing row (db_now, next_due_at) are as in 0004.
 *
 * Within a queue, the priority levels present are visited from the highest (one probe each on
 * `runs_claim_priority`), and each level's due runs are taken in spawn order (an index range).
 *
 * A queue without any `flow_limits` row takes the plain path: one statement per level, as before.
 * A queue with one takes the limited path: a loop over the level's due runs in order (SKIP LOCKED,
 * in passes of what it still wants plus a few), where a run of a limited group is taken only
 * while its group has room. A group is looked at once per claim, under an advisory lock of its
 * own (tried, never waited for: a group another claim is deciding is left to it), which
 * serialises only the claims of that group:
 * - concurrency: the group's running runs whose lease has not expired (a dead worker's slot frees
 *   when its lease expires), against `flow_limits.concurrency`; the group is the task name, or
 *   the name and `concurrency_key` when the task has one;
 * - rate: the starts recorded in `flow_starts` in the last `rate_per_ms`, against `rate_max`.
 * A full group's runs are skipped; the next pass filters them out in the scan. The trailing row's
 * next_due_at then also says when a held group may open: the window's reopening for a rate, the
 * earliest lease expiry of the group's runs for a concurrency limit (a run that finishes sooner
 * wakes its own worker anyway).
 */
export function claimSql(s: string, limited: LimitedPath = rowByRowPath(s)): string {
  return `
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
  v_got integer;
  v_next timestamptz;
  v_lease_until timestamptz := v_now + ${s}._ms(p_lease_ms);
  v_prio integer;
  v_limited boolean;
  v_limited_queues text[] := '{}';
${limited.declare}begin
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
    v_limited := exists (select 1 from ${s}.flow_limits l where l.queue = v_queue);
    if v_limited and not (v_queue = any(v_limited_queues)) then v_limited_queues := v_limited_queues || v_queue; end if;
    v_got := 0;
    v_prio := (select max(r.priority) from ${s}.runs r where r.queue = v_queue and r.state in (${PENDING}, ${SLEEPING}));
    while v_prio is not null and v_got < v_quota loop
      if not v_limited then
        return query select * from ${s}._claim_runs(v_queue, v_prio, null, v_quota - v_got, p_worker, v_now, v_lease_until);
        get diagnostics v_count = row_count;
        v_got := v_got + v_count;
      else
${limited.body}      end if;
      v_prio := (select max(r.priority) from ${s}.runs r
        where r.queue = v_queue and r.state in (${PENDING}, ${SLEEPING}) and r.priority < v_prio);
    end loop;
    v_claimed := v_claimed + v_got;
    if v_k < v_n and v_got >= v_quota then v_full := v_full || v_queue; end if;
  end loop;

  if v_claimed < p_limit then
    foreach v_queue in array p_queues loop
      v_prio := (select max(r.priority) from ${s}.runs r where r.queue = v_queue and r.state in (${PENDING}, ${SLEEPING}));
      while v_prio is not null loop
        -- A limited queue's due runs that were not taken are held (accounted above) or locked.
        v_next := least(v_next, (select r.available_at from ${s}.runs r
          where r.queue = v_queue and r.priority = v_prio and r.state in (${PENDING}, ${SLEEPING})
            and r.available_at < 'infinity' and ${limited.laterDue}
          order by r.available_at limit 1));
        v_prio := (select max(r.priority) from ${s}.runs r
          where r.queue = v_queue and r.state in (${PENDING}, ${SLEEPING}) and r.priority < v_prio);
      end loop;
    end loop;
    return query select null::uuid, null::uuid, null::integer, null::integer, null::boolean, null::text, null::text,
      null::json, null::json, null::json, null::bigint, v_now, v_next;
  end if;
end $$;

-- Claims up to p_limit due runs of one priority level of a queue, in spawn order (p_ids null),
-- or the given runs (already locked by the caller), and returns them as claim_tasks does.
create or replace function ${s}._claim_runs(p_queue text, p_priority integer, p_ids uuid[], p_limit integer,
  p_worker text, p_now timestamptz, p_lease_until timestamptz)
returns table (run_id uuid, task_id uuid, attempt integer, epoch integer, first_start boolean, queue text,
  name text, params json, headers json, checkpoints json, checkpoint_bytes bigint, db_now timestamptz,
  next_due_at timestamptz)
language plpgsql ${SET_PATH} as $$
begin
  if p_ids is null then
    return query ${claimCte(s, `r.queue = p_queue and r.priority = p_priority and r.state in (${PENDING}, ${SLEEPING})
      and r.available_at <= p_now and t.state in (${PENDING}, ${SLEEPING})
    order by r.available_at, r.id
    limit p_limit
    for update of r, t skip locked`)};
  else
    -- By id (the primary key), not by a scan of the level: the caller may have read past a held backlog.
    return query ${claimCte(s, `r.id = any(p_ids) and r.state in (${PENDING}, ${SLEEPING}) and t.state in (${PENDING}, ${SLEEPING})
    for update of r, t`)};
  end if;
end $$;
`;
}

/**
 * The limited path of one priority level (see claimSql): its variables, and the statements that
 * claim up to `v_quota - v_got` runs of `v_queue` at `v_prio`, adding to `v_got` and lowering `v_next`.
 */
export interface LimitedPath {
  declare: string;
  body: string;
  /** The condition on `r` for a run of a level to count for next_due_at (with `v_limited_queues`, `v_now`). */
  laterDue: string;
}

/** 0008's limited path: row by row (replaced by migration 0012). */
function rowByRowPath(s: string): LimitedPath {
  return {
    declare: `  -- Limited path: per group, the room left ({group: n}); groups full or decided by another claim.
  v_room jsonb := '{}';
  v_blocked text[] := '{}';
  v_rate_room jsonb := '{}';
  v_rate_blocked text[] := '{}';
  v_take uuid[];
  v_after_at timestamptz;
  v_after_id uuid;
  v_passes integer;
  v_lim integer;
  v_rated text[];
  v_pass integer;
  v_group text;
  v_left integer;
  v_at timestamptz;
  v_want integer;
`,
    laterDue: '(not (v_queue = any(v_limited_queues)) or r.available_at > v_now)',
    body: `        v_after_at := '-infinity';
        v_after_id := '00000000-0000-0000-0000-000000000000';
        v_passes := 0;
        loop
          v_want := v_quota - v_got;
          exit when v_want <= 0;
          -- Each pass reads on from where the last stopped, more rows each time.
          v_lim := v_want + ${PASS_SLACK} * (1 << least(v_passes, 12));
          v_passes := v_passes + 1;
          v_take := '{}';
          v_rated := '{}';
          v_pass := 0;
          for v_row in
            select r.id, r.available_at, t.name, t.concurrency_key, l.concurrency, l.rate_max, l.rate_per_ms
            from ${s}.runs r join ${s}.tasks t on t.id = r.task_id
              left join ${s}.flow_limits l on l.queue = r.queue and l.name = t.name
            where r.queue = v_queue and r.priority = v_prio and r.state in (${PENDING}, ${SLEEPING})
              and r.available_at <= v_now and (r.available_at, r.id) > (v_after_at, v_after_id)
              and t.state in (${PENDING}, ${SLEEPING})
              and not (t.name = any(v_rate_blocked))
              and not (json_build_array(t.name, t.concurrency_key)::text = any(v_blocked))
            order by r.available_at, r.id
            limit v_lim
            for update of r, t skip locked
          loop
            v_pass := v_pass + 1;
            v_after_at := v_row.available_at;
            v_after_id := v_row.id;
            continue when v_want <= 0;
            if v_row.rate_max is not null then
              continue when v_row.name = any(v_rate_blocked);
              if not v_rate_room ? v_row.name then
                if not pg_try_advisory_xact_lock(${s}._flow_lock('rate', v_queue, v_row.name)) then
                  v_rate_blocked := v_rate_blocked || v_row.name;
                  v_next := least(v_next, v_now + interval '5 milliseconds');
                  continue;
                end if;
                delete from ${s}.flow_starts fs where fs.queue = v_queue and fs.name = v_row.name
                  and fs.started_at <= v_now - ${s}._ms(v_row.rate_per_ms);
                select count(*) into v_left from ${s}.flow_starts fs where fs.queue = v_queue and fs.name = v_row.name;
                v_rate_room := v_rate_room || jsonb_build_object(v_row.name, v_row.rate_max - v_left);
              end if;
              v_left := (v_rate_room->>v_row.name)::integer;
              if v_left <= 0 then
                -- Opens when enough of the window's starts have aged out for one more (-v_left
                -- of them, and the oldest after those; this claim's own starts are the newest).
                select fs.started_at into v_at from ${s}.flow_starts fs
                where fs.queue = v_queue and fs.name = v_row.name
                order by fs.started_at offset -v_left limit 1;
                v_next := least(v_next, coalesce(v_at, v_now) + ${s}._ms(v_row.rate_per_ms));
                v_rate_blocked := v_rate_blocked || v_row.name;
                continue;
              end if;
            end if;
            if v_row.concurrency is not null then
              v_group := json_build_array(v_row.name, v_row.concurrency_key)::text;
              continue when v_group = any(v_blocked);
              if not v_room ? v_group then
                if not pg_try_advisory_xact_lock(${s}._flow_lock('concurrency', v_queue, v_group)) then
                  v_blocked := v_blocked || v_group;
                  v_next := least(v_next, v_now + interval '5 milliseconds');
                  continue;
                end if;
                select count(*) into v_left from ${s}.runs r2 join ${s}.tasks t2 on t2.id = r2.task_id
                where r2.queue = v_queue and r2.state = ${RUNNING} and r2.lease_expires_at > v_now
                  and t2.name = v_row.name and t2.concurrency_key is not distinct from v_row.concurrency_key;
                v_room := v_room || jsonb_build_object(v_group, v_row.concurrency - v_left);
              end if;
              if (v_room->>v_group)::integer <= 0 then
                select min(r2.lease_expires_at) into v_at from ${s}.runs r2 join ${s}.tasks t2 on t2.id = r2.task_id
                where r2.queue = v_queue and r2.state = ${RUNNING} and r2.lease_expires_at > v_now
                  and t2.name = v_row.name and t2.concurrency_key is not distinct from v_row.concurrency_key;
                v_next := least(v_next, v_at);
                v_blocked := v_blocked || v_group;
                continue;
              end if;
              v_room := jsonb_set(v_room, array[v_group], to_jsonb((v_room->>v_group)::integer - 1));
            end if;
            if v_row.rate_max is not null then
              v_rate_room := jsonb_set(v_rate_room, array[v_row.name], to_jsonb((v_rate_room->>v_row.name)::integer - 1));
              v_rated := v_rated || v_row.name;
            end if;
            v_take := v_take || v_row.id;
            v_want := v_want - 1;
          end loop;
          if cardinality(v_take) > 0 then
            insert into ${s}.flow_starts (queue, name, started_at) select v_queue, n, v_now from unnest(v_rated) n;
            return query select * from ${s}._claim_runs(v_queue, v_prio, v_take, cardinality(v_take), p_worker, v_now, v_lease_until);
            get diagnostics v_count = row_count;
            v_got := v_got + v_count;
          end if;
          exit when v_pass < v_lim;
        end loop;
`,
  };
}

/**
 * The claim statement of `_claim_runs`: its candidates `from` (default: runs joined to their
 * tasks) `where`, their runs and tasks set running, and the rows claim_tasks returns. `byIds`
 * (migration 0012): the updates find their rows by primary key from an array of the
 * candidates' ids instead of a join on the candidates (planned as a hashed sequential scan).
 */
export function claimCte(
  s: string, where: string,
  { from, byIds = false, lean = false, starts = false }: { from?: string; byIds?: boolean; lean?: boolean; starts?: boolean } = {},
): string {
  // lean (migration 0015): the deadline written inline, and only for a task whose cancellation
  // has a maxDurationMs (a function with a pinned search_path is never inlined: ~3 us per row).
  const deadline = lean
    ? `when jsonb_typeof(t.cancellation->'maxDurationMs') is distinct from 'number' then null
        else p_now + least(greatest((t.cancellation->>'maxDurationMs')::numeric, 0), 3.15e12)::double precision * interval '1 millisecond' end`
    : `when t.cancellation is null then null
        else p_now + ${s}._ms(${s}._num(t.cancellation->'maxDurationMs')) end`;
  return `
  with candidates as (
    select r.id as run_id, r.task_id, r.attempt, r.claim_epoch + 1 as epoch, t.first_started_at is null as first_start,
      t.queue, t.name, t.params, t.headers
    from ${from ?? `${s}.runs r join ${s}.tasks t on t.id = r.task_id`}
    where ${where}
  ), claimed_runs as (
    ${byIds ? '-- The same row versions as the candidates read (locked): claim_epoch + 1 is their epoch.\n    ' : ''}update ${s}.runs r set state = ${RUNNING}, worker_id = p_worker, claim_epoch = ${byIds ? 'r.claim_epoch + 1' : 'c.epoch'},
      lease_expires_at = p_lease_until, started_at = coalesce(r.started_at, p_now), wake_event = null
    ${byIds ? 'where r.id = any(array(select c.run_id from candidates c))' : 'from candidates c where r.id = c.run_id'}
  ), claimed_tasks as (
    update ${s}.tasks t set state = ${RUNNING}, updated_at = p_now,
      first_started_at = coalesce(t.first_started_at, p_now),
      cancel_at = case
        when t.first_started_at is not null then t.cancel_at
        ${deadline}
    ${byIds ? 'where t.id = any(array(select c.task_id from candidates c))' : 'from candidates c where t.id = c.task_id'}
  )${starts ? `, recorded_starts as (
    -- starts (migration 0016): the starts of the rate-limited names p_rate_names, a row per name.
    insert into ${s}.flow_starts (queue, name, started_at, n)
    select c.queue, c.name, p_now, count(*)::integer from candidates c where c.name = any(p_rate_names) group by c.queue, c.name
  )` : ''}
  -- From the candidates alone: joining the two update CTEs would be a quadratic nested loop.
  select c.run_id, c.task_id, c.attempt, c.epoch, c.first_start, c.queue, c.name, c.params, c.headers,
    cps.list, cps.bytes, p_now, null::timestamptz
  from candidates c,
    -- [name, value, value is SQL NULL]: a step that returned undefined stays undefined. Their
    -- bytes: the worker refuses a step that would take them over maxCheckpointBytesPerTask.
    lateral (select coalesce(json_agg(json_build_array(cp.name, cp.value, cp.value is null)), '[]'::json) as list,
        coalesce(sum(octet_length(cp.value::text)), 0)::bigint as bytes
      from ${s}.checkpoints cp where cp.task_id = c.task_id) cps`;
}
