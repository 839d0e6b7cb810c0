import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { quoteSchema } from '../schema-name.js';

/**
 * Tables and indexes. One set of tables for every queue (the queue is a column), so a queue
 * needs no DDL and `createQueue` is a plain insert. User values (params, headers, results,
 * checkpoints, payloads) are `json`, not `jsonb`: it keeps their text, so object keys come back
 * in the order they were written, on replays as on first runs.
 */
export class DurableCreateTables1764000000001 implements MigrationInterface {
  readonly name = 'DurableCreateTables1764000000001';

  constructor(private readonly schema = 'durable') {}

  // Idempotent (if not exists), so that running it again over a schema made by the app's own
  // TypeORM migration step is harmless. Tasks and runs leave room in their pages so that
  // updates that change no indexed column stay on the page (HOT).
  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    const states = TASK_STATES.map((state) => `'${state}'`).join(',');
    await runner.query(`
      create schema if not exists ${s};

      create table if not exists ${s}.queues (
        name       text primary key,
        created_at timestamptz not null
      );

      create table if not exists ${s}.tasks (
        id               uuid primary key,
        queue            text not null,
        name             text not null,
        params           json not null,
        headers          json not null,
        state            text not null check (state in (${states})),
        attempts         integer not null,
        max_attempts     integer not null check (max_attempts >= 1),
        retry            jsonb not null,
        cancellation     jsonb,
        idempotency_key  text,
        run_id           uuid not null,
        result           json,
        error            jsonb,
        cancel_at        timestamptz,
        created_at       timestamptz not null,
        updated_at       timestamptz not null,
        first_started_at timestamptz,
        finished_at      timestamptz
      ) with (fillfactor = 80);
      create unique index if not exists tasks_idempotency_key on ${s}.tasks (queue, idempotency_key) where idempotency_key is not null;
      create index if not exists tasks_created_at on ${s}.tasks (created_at desc, id desc);
      create index if not exists tasks_queue_created_at on ${s}.tasks (queue, created_at desc, id desc);
      create index if not exists tasks_cancel_at on ${s}.tasks (queue, cancel_at) where cancel_at is not null;
      create index if not exists tasks_finished_at on ${s}.tasks (finished_at) where finished_at is not null;

      create table if not exists ${s}.runs (
        id               uuid primary key,
        task_id          uuid not null references ${s}.tasks (id) on delete cascade,
        queue            text not null,
        attempt          integer not null,
        state            text not null check (state in (${states})),
        available_at     timestamptz not null,
        worker_id        text,
        lease_expires_at timestamptz,
        wake_event       text,
        error            jsonb,
        created_at       timestamptz not null,
        started_at       timestamptz,
        finished_at      timestamptz,
        unique (task_id, attempt)
      ) with (fillfactor = 80);
      create index if not exists runs_claimable on ${s}.runs (queue, available_at, id) where state in ('pending','sleeping');
      -- Not on lease_expires_at: renewing a lease then touches no index (a HOT update).
      create index if not exists runs_running on ${s}.runs (queue) where state = 'running';

      create table if not exists ${s}.checkpoints (
        task_id    uuid not null references ${s}.tasks (id) on delete cascade,
        name       text not null,
        value      json,
        attempt    integer not null,
        created_at timestamptz not null,
        primary key (task_id, name)
      );

      create table if not exists ${s}.events (
        queue      text not null,
        name       text not null,
        payload    json,
        emitted_at timestamptz,
        created_at timestamptz not null,
        primary key (queue, name)
      );

      create table if not exists ${s}.waits (
        run_id     uuid not null references ${s}.runs (id) on delete cascade,
        step_name  text not null,
        task_id    uuid not null,
        queue      text not null,
        event_name text not null,
        timeout_at timestamptz,
        created_at timestamptz not null,
        primary key (run_id, step_name)
      );
      create index if not exists waits_event on ${s}.waits (queue, event_name);
      create index if not exists waits_task on ${s}.waits (task_id);

      -- The test clock: read only when the session sets durable.test_clock = 'on'.
      create table if not exists ${s}.test_clock (
        id        boolean primary key default true check (id),
        offset_ms double precision not null
      );
    `);
  }

  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
      drop table if exists ${s}.test_clock, ${s}.waits, ${s}.events, ${s}.checkpoints, ${s}.runs, ${s}.tasks, ${s}.queues;
    `);
  }
}
