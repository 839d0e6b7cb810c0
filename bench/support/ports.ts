import { createServer } from 'node:net';

/** A free TCP port on 127.0.0.1 (never 5432 or 6379, the machine's own servers). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const value = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(value));
      });
    });
    if (port > 0 && port !== 5432 && port !== 6379) return port;
  }
}
