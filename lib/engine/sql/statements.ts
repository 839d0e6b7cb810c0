import { quoteSchema } from '../../../migrations/schema-name.js';

/**
 * Every statement durable sends, parameterised with `$n`. The schema is the only identifier
 * spliced in, and it is validated by `quoteSchema`. The lifecycle transitions are SQL
 * functions (see migrations/), so each is one round trip.
 */
export function buildStatements(schema: string) {
  const s = quoteSchema(schema);
  const snapshotColumns = `id, name, queue, state, attempts, params, headers, result, result is null as no_result, error, created_at, updated_at`;
  return {
    /** NOTIFY channels: a queue has work (payload: the queue), a task was cancelled (payload: its id). */
    channels: { wakeup: `${schema}_wakeup`, cancel: `${schema}_cancel` },
    spawn: `select * from ${s}.spawn_task($1, $2, $3::json, $4::json, $5, $6::jsonb, $7::jsonb, $8, $9, $10)`,
    claim: `select * from ${s}.claim_tasks($1, $2, $3, $4, $5)`,
    heartbeat: `select ${s}.heartbeat($1, $2, $3, $4) as outcome`,
    writeBatch: `select * from ${s}.write_batch($1, $2::json)`,
    spawnBatch: `select * from ${s}.spawn_batch($1::json)`,
    fail: `select ${s}.fail_run($1, $2, $3, $4::jsonb, $5) as outcome`,
    defer: `select ${s}.defer_run($1, $2, $3, $4) as outcome`,
    sleep: `select * from ${s}.sleep_until($1, $2, $3, $4, $5, $6, $7, $8)`,
    awaitEvent: `select * from ${s}.await_event($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    emit: `select ${s}.emit_event($1, $2, $3::json) as woken`,
    emitFromTask: `select ${s}.emit_from_task($1, $2, $3, $4, $5, $6, $7::json, $8, $9) as outcome`,
    cancel: `select ${s}.cancel_task($1) as outcome`,
    retry: `select ${s}.retry_task($1) as outcome`,
    getTask: `select ${snapshotColumns} from ${s}.tasks where id = $1`,
    taskExists: `select 1 from ${s}.tasks where id = $1`,
    listTasks: `
      select ${snapshotColumns} from ${s}.tasks
      where ($1::text is null or queue = $1) and ($2::text is null or state = $2)
        and ($3::text is null or name = $3)
        and ($4::uuid is null or (created_at, id) < (select created_at, id from ${s}.tasks where id = $4))
      order by created_at desc, id desc
      limit $5`,
    cleanup: `
      with doomed as (
        select id from ${s}.tasks
        where finished_at <= ${s}.now() - $2 * interval '1 millisecond' and ($1::text is null or queue = $1)
        order by finished_at
        limit $3
        for update skip locked
      ), deleted as (
        delete from ${s}.tasks t using doomed where t.id = doomed.id returning 1
      )
      select count(*)::integer as count from deleted`,
    createQueue: `insert into ${s}.queues (name, created_at) values ($1, ${s}.now()) on conflict do nothing`,
    dropQueue: `
      with tasks as (delete from ${s}.tasks where queue = $1 returning 1),
           events as (delete from ${s}.events where queue = $1 returning 1)
      delete from ${s}.queues where name = $1 and (select count(*) from tasks) >= 0
        and (select count(*) from events) >= 0`,
    listQueues: `select name from ${s}.queues order by name`,
    advanceTestClock: `
      insert into ${s}.test_clock (id, offset_ms) values (true, $1)
      on conflict (id) do update set offset_ms = ${s}.test_clock.offset_ms + excluded.offset_ms`,
  } as const;
}

export type Statements = ReturnType<typeof buildStatements>;
