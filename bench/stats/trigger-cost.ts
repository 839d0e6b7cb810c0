/**
 * The cost of migration 0009's triggers on `tasks` when nothing is watched: state flips of 1 and
 * of 50 rows per statement, with the triggers disabled and enabled (`npx tsx bench/stats/trigger-cost.ts`).
 */
import { performance } from 'node:perf_hooks';
import { createDatabase, sqlPool } from '../../devkit/databases.js';
import { DurableClient } from '../../lib/index.js';

const admin = 'postgres://postgres@127.0.0.1:5432/postgres';
const db = await createDatabase(admin, { prefix: 'durable_trig' });
const client = await DurableClient.connect({ databaseUrl: db.url, logger: { log: () => undefined, warn: console.warn, error: console.error } });
const sql = sqlPool(db.url, { max: 1 }); // one connection: its session settings hold for every statement
await sql.query(`insert into durable.tasks (id, queue, name, params, headers, state, attempts, max_attempts, retry, run_id, created_at, updated_at)
  select gen_random_uuid(), 'q', 'bench', '{}', '{}', 'pending', 1, 5, '{"kind":"none"}', gen_random_uuid(), now(), now() from generate_series(1, 10000)`);
await sql.query('vacuum analyze durable.tasks');
const ids = (await sql.query<{ id: string }>('select id from durable.tasks order by id')).rows.map((row) => row.id);
await sql.query('set synchronous_commit = off'); // the trigger's CPU, not the fsync, is what is compared
const flip = `update durable.tasks set state = case when state = 'pending' then 'running' else 'pending' end, updated_at = now() where id = any($1::uuid[])`;
/** Microseconds per statement: `count` statements of `rows` rows each, one transaction each. */
async function time(label: string, rows: number, count: number) {
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = performance.now();
    for (let i = 0; i < count; i++) {
      const from = ((r * count + i) * rows) % ids.length;
      await sql.query(flip, [ids.slice(from, from + rows)]);
    }
    runs.push((performance.now() - start) / count * 1000);
  }
  runs.sort((a, b) => a - b);
  console.log(`${label}: median ${runs[2].toFixed(0)} us per statement (runs ${runs.map((x) => x.toFixed(0)).join(', ')})`);
}
for (const round of [1, 2, 3]) {
  await sql.query('alter table durable.tasks disable trigger user');
  await time(`round ${round} without the triggers, 1 row `, 1, 1000);
  await time(`round ${round} without the triggers, 50 rows`, 50, 200);
  await sql.query('alter table durable.tasks enable trigger user');
  await time(`round ${round} with the triggers,    1 row `, 1, 1000);
  await time(`round ${round} with the triggers,    50 rows`, 50, 200);
}
await sql.query(`insert into durable.watches select id, gen_random_uuid(), now() + interval '1 hour' from durable.tasks order by id desc limit 100`);
await time('with the triggers, 100 other tasks watched, 1 row ', 1, 1000);
await time('with the triggers, 100 other tasks watched, 50 rows', 50, 200);
await sql.end();
await client.close();
await db.drop();
