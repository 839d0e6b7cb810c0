/**
 * A TCP proxy in front of PostgreSQL, to cut one process off from the database while the others
 * keep it (test/integration/reconnect.spec.ts, chaos/lease-fencing.ts).
 * - `freeze()`: a network partition: connections stay open but nothing gets through, and new
 *   connections are accepted but never answered.
 * - `down()`: every connection is cut and new ones are dropped at once.
 * - `restore()`: traffic flows again (connections broken by a freeze are cut first).
 */
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private mode: 'up' | 'down' | 'frozen' = 'up';

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((downstream) => {
      this.track(downstream);
      if (this.mode === 'down') return downstream.destroy();
      if (this.mode === 'frozen') return; // accepted, never answered
      const upstream = tcpConnect(this.target.port, this.target.host);
      this.track(upstream);
      // Forwarded by hand rather than piped, so that a freeze drops data as a partition does.
      downstream.on('data', (chunk) => {
        if (this.mode === 'up') upstream.write(chunk);
      });
      upstream.on('data', (chunk) => {
        if (this.mode === 'up') downstream.write(chunk);
      });
      const cut = () => {
        downstream.destroy();
        upstream.destroy();
      };
      downstream.on('error', cut).on('close', cut);
      upstream.on('error', cut).on('close', cut);
    });
  }

  /** Listens on a free port of 127.0.0.1; returns `url` with its host and port replaced by the proxy's. */
  async listen(url: string): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const proxied = new URL(url);
    proxied.host = `127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return proxied.toString();
  }

  freeze(): void {
    this.mode = 'frozen';
  }

  down(): void {
    this.mode = 'down';
    this.cutAll();
  }

  restore(): void {
    if (this.mode === 'frozen') this.cutAll();
    this.mode = 'up';
  }

  async close(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }
}
