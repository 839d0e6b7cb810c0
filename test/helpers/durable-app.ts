import type { INestApplicationContext, Provider } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import pg from 'pg';
import { DurableClient, DurableModule, type DurableModuleOptions } from '../../lib/index.js';

export interface DurableTestApp {
  app: INestApplicationContext;
  client: DurableClient;
  close(): Promise<void>;
}

/** Boots a Nest app with DurableModule and the given providers, as a user would. */
export async function startApp(
  databaseUrl: string,
  providers: Provider[],
  options: Omit<DurableModuleOptions, 'databaseUrl'> = {},
): Promise<DurableTestApp> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      DurableModule.forRoot({
        databaseUrl,
        ...options,
        worker: options.worker === false ? false : { pollIntervalMs: 200, ...options.worker },
      }),
    ],
    providers,
  }).compile();
  moduleRef.useLogger(process.env.DURABLE_TEST_LOGS ? console : false);
  const app = await moduleRef.init();
  return { app, client: app.get(DurableClient), close: () => app.close() };
}

/** A plain pg pool on the test database, for assertions on the stored rows. */
export function sqlPool(databaseUrl: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  // A database dropped WITH (FORCE) can end an idle connection while the pool is ending.
  pool.on('error', () => undefined);
  return pool;
}

/** Moves the database clock of this test database forward (see the `now()` SQL function). */
export async function advanceClock(pool: pg.Pool, ms: number, schema = 'durable'): Promise<void> {
  await pool.query(
    `insert into "${schema}".test_clock (id, offset_ms) values (true, $1)
     on conflict (id) do update set offset_ms = "${schema}".test_clock.offset_ms + excluded.offset_ms`,
    [ms],
  );
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
