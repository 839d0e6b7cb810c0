import { Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import pg from 'pg';

/**
 * The app's own tables, in schema `sample` of the database durable uses: the fake outside
 * systems (stock, payments, email) and an activity log of every call made to them.
 */
const SCHEMA_SQL = `
  create schema if not exists sample;
  create table if not exists sample.stock_reservations (
    order_id    uuid primary key,
    items       jsonb not null,
    state       text not null check (state in ('reserved', 'released')),
    reserved_at timestamptz,
    released_at timestamptz
  );
  create table if not exists sample.payments (
    id              bigint generated always as identity primary key,
    idempotency_key text not null unique,
    order_id        uuid not null,
    amount_cents    integer not null,
    state           text not null check (state in ('charged', 'refunded', 'voided')),
    created_at      timestamptz not null default now(),
    refunded_at     timestamptz
  );
  create table if not exists sample.emails (
    id              bigint generated always as identity primary key,
    idempotency_key text not null unique,
    order_id        uuid not null,
    recipient       text not null,
    subject         text not null,
    sent_at         timestamptz not null default now()
  );
  create table if not exists sample.activity (
    id       bigint generated always as identity primary key,
    order_id uuid not null,
    action   text not null,
    detail   jsonb not null,
    at       timestamptz not null default now()
  );
  create index if not exists activity_order_id_idx on sample.activity (order_id, id);
`;

/** A connection pool for the app's own tables; creates them at startup. */
export class SampleDatabase implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SampleDatabase.name);
  private readonly pool: pg.Pool;

  constructor(databaseUrl: string) {
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 5 });
    // An idle connection that breaks (the server restarts) must not crash the app.
    this.pool.on('error', (error) => this.logger.warn(`idle connection lost: ${error.message}`));
  }

  async onModuleInit(): Promise<void> {
    // Several instances may start at once against one database: one creates, the others wait.
    await this.transaction(async (client) => {
      await client.query(`select pg_advisory_xact_lock(hashtext('nestjs-durable-sample-app'))`);
      await client.query(SCHEMA_SQL);
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('begin');
      const result = await fn(client);
      await client.query('commit');
      return result;
    } catch (error) {
      // A connection that cannot even roll back is not given back to the pool.
      await client.query('rollback').catch(() => (broken = true));
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
