/**
 * The chaos suite's own tables and trigger logs, which record every effect, every checkpoint
 * write and every completion independently of the library's own bookkeeping. (Servers, fresh
 * databases and pools come from devkit/.)
 */
import pg from 'pg';
import { sqlPool } from '../devkit/databases.js';

/** The observer's pool (devkit's sqlPool, named in pg_stat_activity). */
export function chaosPool(url: string): pg.Pool {
  return sqlPool(url, { applicationName: 'chaos-observer' });
}

/**
 * The test's own tables, in `public` (durable's schema must exist: a client or app connected
 * first). `chaos_effects` gets one row per execution of a step function. The trigger logs
 * record every write of a checkpoint (insert or overwrite) and every update that leaves a task
 * `completed`, so a second checkpoint write or a second completion cannot go unseen even if a
 * later write hid the first.
 */
export async function installChaosTables(pool: pg.Pool, schema = 'durable'): Promise<void> {
  const s = pg.escapeIdentifier(schema);
  // Creating triggers can deadlock with a worker's claim (40P01): try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query(`
        create table if not exists public.chaos_effects (
          task_id uuid not null, step integer not null, attempt integer not null, pid integer not null,
          recorded_at timestamptz not null default clock_timestamp()
        );
        create index if not exists chaos_effects_task on public.chaos_effects (task_id, step);
        create table if not exists public.chaos_checkpoint_writes (
          task_id uuid not null, name text not null, attempt integer not null, op text not null,
          written_at timestamptz not null default clock_timestamp()
        );
        create table if not exists public.chaos_completions (
          task_id uuid not null, run_id uuid, previous_state text not null,
          completed_at timestamptz not null default clock_timestamp()
        );
        create or replace function public.chaos_log_checkpoint() returns trigger language plpgsql as $$
        begin
          insert into public.chaos_checkpoint_writes (task_id, name, attempt, op) values (new.task_id, new.name, new.attempt, tg_op);
          return new;
        end $$;
        create or replace function public.chaos_log_completion() returns trigger language plpgsql as $$
        begin
          insert into public.chaos_completions (task_id, run_id, previous_state) values (new.id, new.run_id, old.state);
          return new;
        end $$;
        drop trigger if exists chaos_log_checkpoint on ${s}.checkpoints;
        create trigger chaos_log_checkpoint after insert or update on ${s}.checkpoints
          for each row execute function public.chaos_log_checkpoint();
        drop trigger if exists chaos_log_completion on ${s}.tasks;
        create trigger chaos_log_completion after update on ${s}.tasks
          for each row when (new.state = 'completed') execute function public.chaos_log_completion();
      `);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt === 5) throw error;
    }
  }
}

export async function count(pool: pg.Pool, sql: string, values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query(sql, values);
  return Number(rows[0]?.n ?? 0);
}

/** The result a `storm` task must return for its params. */
export function expectedStormResult(steps: number, seed: number): { sum: number; steps: number } {
  let sum = 0;
  for (let step = 1; step <= steps; step++) sum += seed * 10 + step;
  return { sum, steps };
}

/** The same in SQL, for a check over many tasks in one query. */
export const EXPECTED_STORM_RESULT_SQL = `json_build_object(
  'sum', (t.params->>'steps')::int * (t.params->>'seed')::int * 10 + (t.params->>'steps')::int * ((t.params->>'steps')::int + 1) / 2,
  'steps', (t.params->>'steps')::int)::jsonb`;
