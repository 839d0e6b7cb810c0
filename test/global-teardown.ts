/** Jest globalTeardown: stops whatever global-setup.ts started. */
import type { DurableTestServer } from './global-setup.js';

export default async function globalTeardown(): Promise<void> {
  const server: DurableTestServer | undefined = globalThis.__DURABLE_TEST_SERVER__;
  globalThis.__DURABLE_TEST_SERVER__ = undefined;
  if (!server) return;
  // An embedded server is stopped and its data folder deleted.
  await server.embedded?.destroy();
  await server.container?.stop();
}
