import type { INestApplicationContext, Provider } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DurableClient, DurableModule, type DurableModuleOptions } from '../../lib/index.js';

// devkit's pool, waiters and test clock, under the names the specs use.
export { sqlPool } from '../../devkit/databases.js';
export { advanceTestClock as advanceClock } from '../../devkit/test-clock.js';
export { eventually, sleep } from '../../devkit/wait.js';

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
