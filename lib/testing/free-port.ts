// One way to pick a free port for the servers that tests, chaos runs and benchmarks start.
import { createServer } from 'node:net';

/** Ports this machine's own servers use (PostgreSQL, Redis): never handed out, even if free now. */
const RESERVED = new Set([5432, 6379]);

/**
 * A free TCP port on 127.0.0.1, found by binding port 0. It is only free until the probe closes:
 * a caller that loses the race to another process should try again with a new one.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.unref();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && !RESERVED.has(port)) return port;
  }
}
