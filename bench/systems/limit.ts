/**
 * The practical limit on this machine: a hand-written task lifecycle on its own two tables, with
 * nothing but what a durable 1-step task needs (claim with SKIP LOCKED, one checkpoint row,
 * completion), each statement its own transaction, 8 clients. `batch` tasks per statement:
 * 50 is the batched lifecycle ("limit" row), 1 the same lifecycle one task at a time.
 */
import pg from 'pg';
import type { Cell, CellContext, SystemAdapter } from './types.js';

const SCHEMA = `
  create table bench_tasks (
    id bigint generated always as identity primary key,
    state text not null default 'pending',
    params json not null,
    worker text,
    result json,
    created_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz
  );
  create index bench_tasks_pending on bench_tasks (id) where state = 'pending';
  create table bench_checkpoints (
    task_id bigint not null references bench_tasks (id),
    name text not null,
    value json,
    created_at timestamptz not null default now(),
    primary key (task_id, name)
  );`;

const CLAIM = `
  update bench_tasks t set state = 'running', worker = $1, started_at = now()
  from (select id from bench_tasks where state = 'pending' order by id limit $2 for update skip locked) c
  where t.id = c.id
  returning t.id`;
const CHECKPOINT = `
  insert into bench_checkpoints (task_id, name, value) select id, 'step:s0', '0'::json from unnest($1::bigint[]) as id`;
const COMPLETE = `
  update bench_tasks set state = 'completed', result = 'null'::json, finished_at = now() where id = any($1::bigint[])`;

function lifecycle(ctx: CellContext): Cell {
  const batch = Number(ctx.settings.batch ?? 50);
  const clients = Number(ctx.settings.clients ?? 8);
  const open: pg.Client[] = [];
  return {
    async prepare() {
      const client = new pg.Client({ connectionString: ctx.databaseUrl });
      await client.connect();
      try {
        await client.query(SCHEMA);
        await client.query(`insert into bench_tasks (params) select '{"steps":1}'::json from generate_series(1, $1)`, [ctx.n]);
        await client.query('vacuum analyze bench_tasks');
      } finally {
        await client.end();
      }
    },
    async run() {
      for (let i = 0; i < clients; i += 1) {
        const client = new pg.Client({ connectionString: ctx.databaseUrl });
        await client.connect();
        open.push(client);
      }
      await Promise.all(open.map(async (client, w) => {
        for (;;) {
          const { rows } = await client.query(CLAIM, [`w${w}`, batch]);
          if (rows.length === 0) return;
          ctx.probe.started();
          const ids = rows.map((row) => row.id as string);
          await client.query(CHECKPOINT, [ids]);
          await client.query(COMPLETE, [ids]);
          ctx.probe.finished(ids.length);
        }
      }));
    },
    async close() {
      await Promise.all(open.map((client) => client.end()));
    },
  };
}

export const system: SystemAdapter = {
  id: 'limit',
  title: 'limit (hand-written)',
  note: 'limit: insert, claim with FOR UPDATE SKIP LOCKED, one checkpoint row, complete; each statement one transaction, 8 clients; batch = tasks per statement',
  async availability() {
    return { label: 'hand-written SQL lifecycle (pg driver)' };
  },
  cells: { 'drain-1': lifecycle },
  rows: [{ scenario: 'drain-1', candidates: [{ batch: 50, clients: 8 }] }],
};

/** The same lifecycle one task per statement, as a separate row. */
export const unbatched: SystemAdapter = {
  ...system,
  id: 'limit-1by1',
  title: 'limit, 1 task/statement',
  note: undefined,
  cells: { 'drain-1': lifecycle },
  rows: [{ scenario: 'drain-1', candidates: [{ batch: 1, clients: 8 }], maxN: 3000 }],
};
