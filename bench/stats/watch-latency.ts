/**
 * How long a change takes to reach a `client.watch` subscriber (`npx tsx bench/stats/watch-latency.ts`):
 * a task sets its progress 50 times, 100 ms apart, in a worker app; a producer-only client in the
 * same process watches it (LISTEN/NOTIFY, one read per batch of changes) and notes, for each
 * snapshot, the time since the change committed (the task's `updatedAt`, the database clock on
 * this host).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { lastValueFrom, tap } from 'rxjs';
import { createDatabase } from '../../devkit/databases.js';
import { DurableClient, DurableModule, DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';

const N = 50;

@DurableTask({ name: 'ticker' })
class TickerTask implements DurableTaskHandler<{ n: number }, number> {
  async run(params: { n: number }, ctx: TaskContext) {
    for (let i = 1; i <= params.n; i++) {
      await ctx.setProgress({ i });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return params.n;
  }
}

async function main(): Promise<void> {
  const db = await createDatabase(process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', { prefix: 'durable_watch' });
  @Module({ imports: [DurableModule.forRoot({ databaseUrl: db.url })], providers: [TickerTask] })
  class WorkerApp {}
  const app = await NestFactory.createApplicationContext(WorkerApp, { logger: false });
  const watcher = await DurableClient.connect({ databaseUrl: db.url, migrationsRun: false });
  try {
    const { taskId } = await watcher.spawn('ticker', { n: N });
    const lags: number[] = [];
    await lastValueFrom(watcher.watch(taskId).pipe(tap((task) => {
      if (task.progress !== null && task.state === 'running') lags.push(Date.now() - task.updatedAt.getTime());
    })));
    lags.sort((a, b) => a - b);
    const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(lags.length * q))];
    console.log(`${lags.length} of ${N} progress changes seen; commit -> subscriber: p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${lags.at(-1)} ms`);
  } finally {
    await watcher.close();
    await app.close();
    await db.drop();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
