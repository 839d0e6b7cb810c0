/**
 * One idle worker process of the `idle` rows (forked by bench/systems/durable-idle.ts):
 * a Nest application context with DurableModule, its worker serving `queues` queues and
 * `names` task names (spread over the queues), default worker settings. It counts every
 * statement its pg clients send. Messages: -> 'ready' once booted; 'mark' (count from now);
 * 'report' -> { statements } since the mark; 'stop' -> closes the app and exits.
 * BENCH_IDLE (JSON): { databaseUrl, queues, names }.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import pg from 'pg';
import { DurableModule, DurableTask } from '../lib/index.js';

const spec = JSON.parse(process.env.BENCH_IDLE ?? '{}') as { databaseUrl: string; queues: number; names: number };
const send = (message: object) => new Promise<void>((resolve) => process.send!(message, () => resolve()));

let statements = 0;
const original = pg.Client.prototype.query;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  statements += 1;
  return (original as (...a: unknown[]) => unknown).apply(this, args);
} as typeof original;

const queues = Array.from({ length: spec.queues }, (_, i) => (spec.queues === 1 ? 'default' : `q${i}`));
const tasks = Array.from({ length: spec.names }, (_, i) => {
  class IdleTask {
    async run(): Promise<null> {
      return null;
    }
  }
  DurableTask({ name: `idle-${i}`, queue: queues[i % queues.length], retry: { kind: 'none' } })(IdleTask);
  return IdleTask;
});

@Module({
  imports: [DurableModule.forRoot({ databaseUrl: spec.databaseUrl, worker: { queues } })],
  providers: tasks,
})
class IdleModule {}

const app = await NestFactory.createApplicationContext(IdleModule, { logger: ['error', 'warn'] });
let mark = 0;
process.on('message', (message: { type: string }) => {
  if (message?.type === 'mark') mark = statements;
  if (message?.type === 'report') void send({ type: 'report', statements: statements - mark });
  if (message?.type === 'stop') void app.close().then(() => process.exit(0));
});
await send({ type: 'ready' });
