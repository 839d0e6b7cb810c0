import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SetupError } from '../config.js';

/** What embedded-postgres.server.ts tells the app over IPC. */
export type ServerMessage =
  | { type: 'log'; message: string }
  | { type: 'ready'; url: string }
  | { type: 'failed'; message: string };

export interface EmbeddedDatabase {
  url: string;
  /** Stops PostgreSQL and waits for it. Exiting the app does the same on its own. */
  stop(): Promise<void>;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./embedded-postgres.server.js', import.meta.url));

/**
 * Starts the embedded PostgreSQL on the data in `dataDir` (created on first use) in a process
 * of its own; see embedded-postgres.server.ts for why.
 */
export async function startEmbeddedPostgres(dataDir: string, log: (message: string) => void): Promise<EmbeddedDatabase> {
  const child = fork(SERVER_SCRIPT, [dataDir], { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'log') log(message.message);
      else if (message.type === 'ready') resolve(message.url);
      else reject(new SetupError(`embedded PostgreSQL: ${message.message}`));
    });
    child.once('exit', (code, signal) => reject(new SetupError(`embedded PostgreSQL: its process exited (${signal ?? code}) before it was ready`)));
  });

  // Neither the process nor its IPC channel keeps the app alive; when the app exits, the
  // channel closes and the server stops PostgreSQL.
  child.unref();
  child.channel?.unref();

  return {
    url,
    async stop() {
      child.ref(); // wait for it, even when nothing else keeps the app alive
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}
