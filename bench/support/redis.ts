/**
 * A private redis-server for BullMQ, with durability comparable to Postgres' synchronous
 * commit: every write is appended to the AOF and fsynced before it is acknowledged.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../devkit/index.js';

export const REDIS_DURABILITY = 'appendonly yes, appendfsync always';

export interface RedisServer {
  port: number;
  url: string;
  pid: number;
  version: string;
  /** Bytes in the AOF directory (the analogue of WAL bytes). */
  aofBytes(): Promise<number>;
  stop(): Promise<void>;
}

/** The redis-server binary, or the reason there is none. */
export function redisBinary(): { path: string; version: string } | { reason: string } {
  const path = process.env.BENCH_REDIS_SERVER ?? 'redis-server';
  try {
    const version = execFileSync(path, ['--version'], { encoding: 'utf8' }).trim();
    return { path, version: /v=(\S+)/.exec(version)?.[1] ?? version };
  } catch {
    return { reason: `no redis-server binary (${path}) on this machine; install it (apt-get install redis-server) or set BENCH_REDIS_SERVER` };
  }
}

export async function startRedis(): Promise<RedisServer> {
  const binary = redisBinary();
  if ('reason' in binary) throw new Error(binary.reason);
  const dir = await mkdtemp(join(tmpdir(), 'durable-bench-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn(binary.path, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'yes', '--daemonize', 'no',
    // No automatic AOF rewrite: the file only grows, so its growth is what the writes cost.
    '--auto-aof-rewrite-percentage', '0',
  ], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForPing(port, 10_000);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    version: binary.version,
    aofBytes: () => directoryBytes(dir),
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath ?? dir, entry.name))).size;
  }
  return total;
}

async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
