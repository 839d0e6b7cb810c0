import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * The app's own tables, in schema `sample` of the database durable uses (durable's are in
 * schema `durable`): the orders, the fake outside systems (stock, warehouse picks, payments, email) and an
 * activity log of every call made to them. Plain SQL, idempotent; no `synchronize`.
 */
const SCHEMA_SQL = `
  create schema if not exists sample;
  create table if not exists sample.orders (
    id             uuid primary key,
    customer_email text not null,
    total_cents    integer not null,
    item_count     integer not null,
    created_at     timestamptz not null default now()
  );
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
  create table if not exists sample.picks (
    id        bigint generated always as identity primary key,
    order_id  uuid not null,
    line      integer not null,
    sku       text not null,
    quantity  integer not null,
    picked_at timestamptz not null default now(),
    unique (order_id, line)
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

/** Creates the app's tables at startup, through the app's DataSource (the one durable reuses). */
@Injectable()
export class SampleSchema implements OnModuleInit {
  constructor(private readonly dataSource: DataSource) {}

  async onModuleInit(): Promise<void> {
    // Several instances may start at once against one database: one creates, the others wait.
    await this.dataSource.transaction(async (manager) => {
      await manager.query(`select pg_advisory_xact_lock(hashtext('nestjs-durable-sample-app'))`);
      await manager.query(SCHEMA_SQL);
    });
  }
}
