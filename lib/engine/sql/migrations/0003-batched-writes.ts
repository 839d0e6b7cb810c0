import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quoteSchema } from '../schema-name.js';

/**
 * Batched transitions: many tasks' checkpoints and completions in one statement, and many
 * spawns in one transaction. Each operation keeps its own fence and its own outcome; the
 * batch only shares the round trip and the commit (group commit).
 */
export class DurableBatchedWrites1764000000003 implements MigrationInterface {
  readonly name = 'DurableBatchedWrites1764000000003';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
-- p_ops: [{ "kind": "checkpoint" | "complete", "task_id", "run_id", "name",
-- "value", "undefined", "attempt", "lease_ms" }, ...], at most one per run. "undefined": true
-- stores SQL NULL (a JSON null in "value" would read as SQL NULL too). Returns the index
-- (from 1) and outcome ('ok', 'cancelled' or 'lost', as the single-task functions would) of
-- each operation whose task and run exist; for the others the outcome is 'lost'.
create or replace function ${s}.write_batch(p_worker text, p_ops json)
returns table (i integer, outcome text) language plpgsql as $$
declare
  v_now timestamptz := ${s}.now();
begin
  return query
  with ops as (
    select e.i::integer as i, x.*
    from json_array_elements(p_ops) with ordinality as e(op, i),
      lateral json_to_record(e.op) as x(kind text, task_id uuid, run_id uuid, name text, value json,
        "undefined" boolean, attempt integer, lease_ms double precision)
  ), locked as (
    -- Task before run, in task order, as every transition locks. The fence is judged on the
    -- rows as locked (their latest versions). No CTE is joined with another below: the
    -- planner cannot size them, and a nested loop over two of them is quadratic.
    select o.*, ${s}._fence_outcome(t.state, r.state, r.worker_id, r.lease_expires_at, p_worker, v_now) as outcome
    from ops o
    join ${s}.tasks t on t.id = o.task_id
    join ${s}.runs r on r.id = o.run_id
    order by t.id
    for update of t, r
  ), ok as (
    select l.kind, l.task_id, l.run_id, l.name, l.attempt, l.lease_ms,
      case when l."undefined" then null else coalesce(l.value, 'null'::json) end as value
    from locked l where l.outcome = 'ok'
  ), checkpoints as (
    insert into ${s}.checkpoints (task_id, name, value, attempt, created_at)
    select ok.task_id, ok.name, ok.value, ok.attempt, v_now from ok where ok.kind = 'checkpoint'
    on conflict (task_id, name) do update set value = excluded.value, attempt = excluded.attempt,
      created_at = excluded.created_at
    where ${s}.checkpoints.attempt <= excluded.attempt
    returning 1
  ), renewed as (
    -- The batched form of _renew_lease.
    update ${s}.runs r set lease_expires_at = v_now + ${s}._ms(ok.lease_ms)
    from ok where ok.kind = 'checkpoint' and r.id = ok.run_id
    returning 1
  ), completed_runs as (
    update ${s}.runs r set state = 'completed', lease_expires_at = null, finished_at = v_now
    from ok where ok.kind = 'complete' and r.id = ok.run_id
    returning 1
  ), completed_tasks as (
    update ${s}.tasks t set state = 'completed', result = ok.value, error = null, cancel_at = null,
      finished_at = v_now, updated_at = v_now
    from ok where ok.kind = 'complete' and t.id = ok.task_id
    returning 1
  ), finished_waits as (
    delete from ${s}.waits w using ok where ok.kind = 'complete' and w.run_id = ok.run_id
    returning 1
  )
  select l.i, l.outcome from locked l;
end $$;

-- p_spawns: [[queue, name, params, headers, max_attempts, retry, cancellation, key, delay_ms, run_at], ...]
create or replace function ${s}.spawn_batch(p_spawns json)
returns table (i integer, task_id uuid, run_id uuid, attempt integer, created boolean)
language sql as $$
  select e.i::integer, st.task_id, st.run_id, st.attempt, st.created
  from json_array_elements(p_spawns) with ordinality as e(spawn, i),
    lateral ${s}.spawn_task(e.spawn->>0, e.spawn->>1, e.spawn->2, e.spawn->3, (e.spawn->>4)::integer,
      (e.spawn->5)::jsonb, (e.spawn->6)::jsonb, e.spawn->>7, (e.spawn->>8)::double precision,
      (e.spawn->>9)::timestamptz) as st
  order by e.i
$$;
`);
  }

  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`drop function if exists ${s}.write_batch, ${s}.spawn_batch;`);
  }
}
