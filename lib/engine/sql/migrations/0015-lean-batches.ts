import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { quoteSchema } from '../schema-name.js';
import { PINNED_SEARCH_PATH, pinSearchPath } from './0004-execution-fencing.js';
import { writeBatchSql } from './0009-progress-and-watching.js';
import { claimRunsSql } from './0012-set-based-flow-claim.js';

const [, RUNNING, , COMPLETED, , CANCELLED] = TASK_STATES.map((state) => `'${state}'`);
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;

/**
 * Less database work per task in the two statements every task goes through (issue 18: server
 * CPU per task), same outcomes.
 *
 * - `_claim_runs` writes a task's deadline (`cancellation.maxDurationMs`) inline, and only for a
 *   task that has one: `_ms(_num(...))` are functions with a pinned search_path, which Postgres
 *   never inlines, and their two calls cost about 3.5 us per claimed run (a fifth of the claim).
 * - `write_batch`:
 *   - reads its operations with one `json_to_recordset` instead of a `json_to_record` per element;
 *   - looks for an existing checkpoint only for a checkpoint (a completion probed the index too);
 *   - decides a lease renewal on the run row it locked instead of reading the row again;
 *   - tells parents of children it completed only when there are such children (it read the
 *     JSON again and every completed task's row to find none), from the rows it locked;
 *   - turns `synchronous_commit` off for a batch of nothing but progress writes after the writes
 *     (it applies at commit) from those rows, instead of reading the JSON a third time first.
 * - `_claim_runs` and `write_batch` run with hash and merge joins off. Each joins a handful to a
 *   few hundred ids (of a batch, or of the runs a limited claim chose) to `tasks` and `runs` by
 *   primary key, and Postgres planned those joins, depending on the table statistics of the
 *   moment, as a hash join over a sequential scan of `runs`: a statement that reads the whole
 *   table, 2 to 6 ms with 20,000 runs, and growing with it (seen in the flow drains, and for
 *   `write_batch` on a `runs` of 20,000). With only nested loops left, each id is one
 *   primary-key probe whatever the statistics say. Not `claim_tasks`: with hash joins off for all
 *   of it (or for its lock pass alone, in a function of its own) a binding limit's drain was 20%
 *   slower, for reasons not found; its lock pass keeps the plan Postgres picks, which may scan
 *   `runs` in the first claims of a connection.
 */
export class DurableLeanBatches1764000000015 implements MigrationInterface {
  readonly name = 'DurableLeanBatches1764000000015';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
${claimRunsSql(s, true)}
${writeBatchLean(s)}
${pinSearchPath(this.schema)}
${KEYED_FUNCTIONS.map((fn) => `alter function ${s}.${fn} set enable_hashjoin = off set enable_mergejoin = off;`).join('\n')}`);
  }

  /** Back to 0012's `_claim_runs` and 0013's `write_batch` (their planner settings go with them). */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
${claimRunsSql(s)}
${writeBatchSql(s, true)}
${pinSearchPath(this.schema)}`);
  }
}

/** The functions whose joins go by primary key (see the class comment). */
const KEYED_FUNCTIONS = [
  '_claim_runs(text, integer, uuid[], integer, text, timestamptz, timestamptz)',
  'write_batch(text, json)',
];

function writeBatchLean(s: string): string {
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
  v_ops integer[];
  v_outcomes text[];
  v_children uuid[];
  v_durable boolean;
begin
  with ops as (
    select x.n::integer as n, x.kind, x.task_id, x.run_id, x.epoch, x.name, x.value, x."undefined", x.attempt,
      case when x.lease_ms is not null then least(greatest(x.lease_ms, 0), 3.15e12) * interval '1 millisecond' end as lease
    from rows from (json_to_recordset(p_ops) as (kind text, task_id uuid, run_id uuid, epoch integer, name text,
        value json, "undefined" boolean, attempt integer, lease_ms double precision)) with ordinality
      as x(kind, task_id, run_id, epoch, name, value, "undefined", attempt, lease_ms, n)
  ), locked as (
    -- Task before run, in task order, as every transition locks. The fence is judged on the
    -- rows as locked (their latest versions). No CTE is joined with another below: the
    -- planner cannot size them, and a nested loop over two of them is quadratic.
    select o.*, t.parent_task_id,
      case when o.kind = 'checkpoint'
        then exists (select 1 from ${s}.checkpoints cp where cp.task_id = o.task_id and cp.name = o.name)
        else false end as stored,
      case when t.state = ${CANCELLED} then 'cancelled'
        when r.state = ${RUNNING} and r.worker_id = p_worker and r.claim_epoch = o.epoch and r.lease_expires_at > v_now then 'ok'
        else 'lost' end as fence,
      -- The batched form of _renew_lease, when the lease was renewed longer ago than
      -- min(a tenth of it, 1 s): a lease set a moment ago is not written again.
      o.kind = 'checkpoint' and r.lease_expires_at < v_now + o.lease - least(o.lease / 10, interval '1 second') as renew
    from ops o
    join ${s}.tasks t on t.id = o.task_id
    join ${s}.runs r on r.id = o.run_id and r.task_id = o.task_id
    order by t.id
    for update of t, r
  ), ok as (
    select l.kind, l.task_id, l.run_id, l.name, l.attempt, l.lease, l.renew,
      case when l."undefined" then null else coalesce(l.value, 'null'::json) end as value
    from locked l where l.fence = 'ok' and not l.stored
  ), checkpoints as (
    -- First writer wins: a committed checkpoint may have been returned to user code already.
    insert into ${s}.checkpoints (task_id, name, value, attempt, created_at)
    select ok.task_id, ok.name, ok.value, ok.attempt, v_now from ok where ok.kind = 'checkpoint'
    on conflict (task_id, name) do nothing
    returning 1
  ), renewed as (
    update ${s}.runs r set lease_expires_at = v_now + ok.lease
    from ok where ok.renew and r.id = ok.run_id
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
  select array_agg(l.n), array_agg(case when l.fence <> 'ok' then l.fence when l.stored then 'exists' else 'ok' end),
    array_agg(l.task_id) filter (where l.kind = 'complete' and l.fence = 'ok' and l.parent_task_id is not null),
    bool_or(l.kind <> 'progress')
  into v_ops, v_outcomes, v_children, v_durable
  from locked l;
  -- Nothing but progress: no need to wait for the WAL flush (the setting applies at commit).
  if not coalesce(v_durable, false) then
    perform pg_catalog.set_config('synchronous_commit', 'off', true);
  end if;
  return query select u.n, u.outcome from unnest(v_ops, v_outcomes) u(n, outcome);
  -- The children this call completed tell their parents (a join may wait for them).
  if v_children is not null then
    perform ${s}._child_terminal(t.id, true, v_now)
    from ${s}.tasks t
    where t.id = any(v_children) and t.state = ${COMPLETED} and t.finished_at = v_now
    order by t.parent_task_id;
  end if;
end $$;
`;
}
