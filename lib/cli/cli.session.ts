import type { Command } from 'commander';
import { DurableClient } from '../engine/client/durable-client.js';
import { passwordOf } from '../engine/db/connection.js';
import { redact } from '../engine/db/database-errors.js';
import type { DurableLogger } from '../engine/support/logger.js';
import { redactUrl } from '../engine/support/redact.js';
import { DatabaseUnavailableError } from '../errors/database-unavailable.error.js';
import { CliError } from './cli.error.js';

/** Where the CLI writes: stdout (results only) and stderr (everything else), and how wide. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** The columns a table may use. */
  width: number;
}

/** The options every command takes (see cli.program.ts). */
export interface GlobalOptions {
  databaseUrl?: string;
  schema: string;
  json: boolean;
}

/**
 * One run of the CLI: the global options of the command being run, the client (connected on
 * first use, closed at the end) and the output, which is one JSON document with `--json` and
 * text for people otherwise. Every message passes `scrub`: no password reaches a terminal.
 */
export class CliSession {
  private opened: Promise<DurableClient> | undefined;
  private password: string | undefined;
  options: GlobalOptions = { schema: 'durable', json: false };

  constructor(readonly io: CliIo) {}

  /** Takes the options of the command about to run (its own and the global ones). */
  use<T>(command: Command): T & GlobalOptions {
    const all = command.optsWithGlobals<T & GlobalOptions>();
    this.options = all;
    return all;
  }

  client(): Promise<DurableClient> {
    this.opened ??= this.connect(DurableClient.connect);
    return this.opened;
  }

  /** The URL to connect to, checked (exit 2 when missing or not a postgres URL). */
  databaseUrl(): string {
    const url = this.options.databaseUrl;
    if (!url) {
      throw new CliError(2, 'no database given: set DURABLE_DATABASE_URL or pass --database-url postgres://user:password@host:5432/database');
    }
    try {
      this.password = passwordOf(url);
    } catch (error) {
      throw new CliError(2, `${(error as Error).message}; check --database-url or DURABLE_DATABASE_URL`);
    }
    return url;
  }

  /** Runs `open` with the URL, turning an unreachable database into a message that says what to check. */
  async connect<T>(open: (options: { databaseUrl: string; schema: string; migrationsRun: false; poolSize: number; logger: DurableLogger }) => Promise<T>): Promise<T> {
    const databaseUrl = this.databaseUrl();
    try {
      return await open({ databaseUrl, schema: this.options.schema, migrationsRun: false, poolSize: 2, logger: this.logger() });
    } catch (error) {
      if (error instanceof DatabaseUnavailableError) {
        throw new CliError(1, `could not connect to ${redactUrl(databaseUrl)}: ${this.scrub(error.message)}\n` +
          'Check the URL (--database-url or DURABLE_DATABASE_URL), and that PostgreSQL runs there and accepts this user.');
      }
      throw error;
    }
  }

  logger(): DurableLogger {
    return { log() {}, warn: (message) => this.io.err(`warning: ${this.scrub(message)}\n`), error: (message) => this.io.err(`error: ${this.scrub(message)}\n`) };
  }

  /** With `--json`: `data` as the one JSON document on stdout. Otherwise the text `human` makes. */
  output(data: unknown, human: () => string): void {
    this.io.out(this.options.json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
  }

  /** `text` without any password: the URL's, and any `scheme://user:password@` in it. */
  scrub(text: string): string {
    const out = redact(text);
    return this.password ? out.split(this.password).join('***') : out;
  }

  async close(): Promise<void> {
    const client = await this.opened?.catch(() => undefined);
    await client?.close().catch(() => undefined);
  }
}
