/** Jest globalTeardown: stops whatever global-setup.ts started. */
import { rm } from 'node:fs/promises';
import type { DurableTestServer } from './global-setup.js';

export default async function globalTeardown(): Promise<void> {
  const server: DurableTestServer | undefined = globalThis.__DURABLE_TEST_SERVER__;
  globalThis.__DURABLE_TEST_SERVER__ = undefined;
  if (!server) return;
  if (server.embedded) {
    // persistent: false -> stop() also deletes the data directory.
    await server.embedded.stop();
  }
  if (server.tmpDir) {
    await rm(server.tmpDir, { recursive: true, force: true });
  }
  if (server.container) {
    await server.container.stop();
  }
}
