import type { INestApplicationContext, Provider } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DurableClient, DurableModule, type DurableModuleOptions } from '../../lib/index.js';

// devkit's pool, waiters and test clock, under the names the specs use.
export { sqlPool } from '../../devkit/databases.js';
export { advanceTestClock as advanceClock } from '../../devkit/test-clock.js';
export { eventually, sleep } from '../../devkit/wait.js';

/**
 * pg_stat_activity's condition for durable's LISTEN connections: their last statement is the
 * LISTEN, the ping, or a worker's liveness lock taken again after the LISTEN (Worker.beat); not
 * the session that asks (its own query names the lock).
 */
export const LISTEN_CONNECTION = `pid <> pg_backend_pid() and (query ilike 'listen %' or query = 'select 1' or query like '%pg_try_advisory_lock%')`;

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
