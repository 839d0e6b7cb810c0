/**
 * A TCP proxy in front of PostgreSQL, to cut one process off from the database while the others
 * keep it (test/integration/reconnect.spec.ts, chaos/lease-fencing.ts).
 * - `freeze()`: a network partition: connections stay open but nothing gets through, and new
 *   connections are accepted but never answered.
 * - `down()`: every connection is cut and new ones are dropped at once.
 * - `restore()`: traffic flows again (connections broken by a freeze are cut first).
 * With `delay`, each chunk is held for the milliseconds it returns (in order within its direction
 * of its connection), as an uneven network would: a statement sent on one connection can then
 * reach the server after a later one sent on another (chaos/suspend-storm.ts). `delay` may also
 * be a number: a fixed one-way delay in ms, the same in both directions (`rttMs / 2`), as a
 * database a few milliseconds away (`npm run bench`, the distance rows).
 */
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private mode: 'up' | 'down' | 'frozen' = 'up';
  private readonly options: { delay?: (chunk: Buffer, toServer: boolean) => number };

  constructor(
    private readonly target: { host: string; port: number },
    options: { delay?: number | ((chunk: Buffer, toServer: boolean) => number) } = {},
  ) {
    const { delay } = options;
    this.options = { delay: typeof delay === 'number' ? (delay > 0 ? () => delay : undefined) : delay };
    this.server = createServer((downstream) => {
      this.track(downstream);
      if (this.mode === 'down') return downstream.destroy();
      if (this.mode === 'frozen') return; // accepted, never answered
      const upstream = tcpConnect(this.target.port, this.target.host);
      this.track(upstream);
      // As PostgreSQL and node-postgres do on their own sockets: without it, Nagle's algorithm
      // holds a small last segment of a reply until the previous one is acknowledged, and a
      // delayed ACK makes that tens of milliseconds a network of `delay` would not add.
      downstream.setNoDelay(true);
      upstream.setNoDelay(true);
      // Forwarded by hand rather than piped, so that a freeze drops data as a partition does.
      downstream.on('data', this.forwarder(upstream, true));
      upstream.on('data', this.forwarder(downstream, false));
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

  /** Writes each chunk to `to` while up: at once, or after its delay, in order. */
  private forwarder(to: Socket, toServer: boolean): (chunk: Buffer) => void {
    const { delay } = this.options;
    if (!delay) {
      return (chunk) => {
        if (this.mode === 'up') to.write(chunk);
      };
    }
    const queue: { at: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const drain = () => {
      timer = undefined;
      while (queue.length > 0 && queue[0].at <= performance.now()) {
        const { chunk } = queue.shift()!;
        if (this.mode === 'up' && !to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(drain, Math.max(0, queue[0].at - performance.now()));
    };
    return (chunk) => {
      if (this.mode !== 'up') return;
      // performance.now(): sub-millisecond, so a 1 ms delay is not rounded up to 2.
      queue.push({ at: Math.max(performance.now() + delay(chunk, toServer), queue.at(-1)?.at ?? 0), chunk });
      timer ??= setTimeout(drain, Math.max(0, queue[0].at - performance.now()));
    };
  }

  private cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }
}
