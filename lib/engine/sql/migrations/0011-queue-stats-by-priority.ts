import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { quoteSchema } from '../schema-name.js';
import { PINNED_SEARCH_PATH, pinSearchPath } from './0004-execution-fencing.js';
import { DurableProgressAndWatching1764000000009 } from './0009-progress-and-watching.js';

/**
 * `queue_stats` on the claim index of migration 0008.
 *
 * 0009's `queue_stats` took the oldest due pending run with `order by available_at limit 1`, an
 * index walk on 0001's `runs_claimable (queue, available_at, id)`. Migration 0008 replaced that
 * index by `runs_claim_priority (queue, priority desc, available_at, id)`, where the runs of a
 * queue are in due order only within one priority level, so the query read (and sorted) every
 * pending run of the queue. Now it visits the priority levels present as `claim_tasks` does
 * (a recursive CTE: the highest level, then the next lower one, one index probe each), takes
 * each level's first due pending run by index, and the earliest of those: the cost grows with
 * the number of priority levels in the queue, not with its backlog.
 */
export class DurableQueueStatsByPriority1764000000011 implements MigrationInterface {
  readonly name = 'DurableQueueStatsByPriority1764000000011';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`${queueStatsSql(quoteSchema(this.schema))}
${pinSearchPath(this.schema)}`);
  }

  /** Back to 0009's `queue_stats` (0009 runs again: it is idempotent). */
  async down(runner: QueryRunner): Promise<void> {
    await new DurableProgressAndWatching1764000000009(this.schema).up(runner);
    await runner.query(`drop function if exists ${quoteSchema(this.schema)}._oldest_due(text, timestamptz)`);
  }
}

const [PENDING, RUNNING, SLEEPING, COMPLETED, FAILED, CANCELLED] = TASK_STATES.map((state) => `'${state}'`);
const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;

function queueStatsSql(s: string): string {
  return `
-- Per queue (one queue, or every queue that has tasks or a queues row): the count of each state,
-- and how long the oldest runnable pending run has been due (null when none is).
create or replace function ${s}.queue_stats(p_queue text)
returns table (queue text, pending bigint, running bigint, sleeping bigint, completed bigint, failed bigint,
  cancelled bigint, oldest_pending_at timestamptz, db_now timestamptz)
language plpgsql ${SET_PATH} as $$
declare
  v_now timestamptz := ${s}.now();
begin
  perform ${s}.stats_compact();
  return query
  with counts as (
    select c.queue, c.state, sum(c.n)::bigint as n from ${s}.task_counts c
    where p_queue is null or c.queue = p_queue group by c.queue, c.state
  ), names as (
    select c.queue from counts c
    union select q.name from ${s}.queues q where p_queue is null or q.name = p_queue
    union select p_queue where p_queue is not null
  )
  select n.queue,
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${PENDING}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${RUNNING}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${SLEEPING}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${COMPLETED}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${FAILED}), 0),
    coalesce((select c.n from counts c where c.queue = n.queue and c.state = ${CANCELLED}), 0),
    ${s}._oldest_due(n.queue, v_now),
    v_now
  from names n order by n.queue;
end $$;

-- When the oldest due pending run of a queue became due (null: none is), on runs_claim_priority:
-- the priority levels present, from the highest (one probe each), and each level's first due
-- pending run in due order (an index range that stops at the first pending row).
create or replace function ${s}._oldest_due(p_queue text, p_now timestamptz) returns timestamptz
language sql stable ${SET_PATH} as $$
  with recursive levels(priority) as (
    (select r.priority from ${s}.runs r where r.queue = p_queue and r.state in (${PENDING}, ${SLEEPING})
      order by r.priority desc limit 1)
    union all
    select (select r.priority from ${s}.runs r where r.queue = p_queue and r.state in (${PENDING}, ${SLEEPING})
        and r.priority < l.priority order by r.priority desc limit 1)
    from levels l where l.priority is not null
  )
  select min((select r.available_at from ${s}.runs r
      where r.queue = p_queue and r.priority = l.priority and r.state in (${PENDING}, ${SLEEPING})
        and r.state = ${PENDING} and r.available_at <= p_now
      order by r.priority desc, r.available_at limit 1))
  from levels l where l.priority is not null
$$;
`;
}
