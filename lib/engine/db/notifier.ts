import type { Client } from 'pg';
import { redact } from './database-errors.js';
import { delay } from '../support/wakeable.js';
import type { DurableLogger } from '../support/logger.js';

/** A notification, or `undefined` after (re)connecting: anything sent meanwhile was lost. */
export type Notification = { channel: string; payload: string } | undefined;

/**
 * Holds one connection in LISTEN on durable's channels and passes each notification to the
 * listeners. The connection is a client of its own (`connect` makes a new, unconnected one for
 * each attempt), never one checked out of a pool: whoever owns a pool can end it at any time
 * without waiting for durable. Notifications only make things fast; polling and the fenced
 * writes remain the guarantee, so a lost connection is logged and re-established.
 */
export class Notifier {
  private hangUp: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly listeners = new Set<(notification: Notification) => void>();

  constructor(
    private readonly connect: () => Client,
    private readonly channels: string[],
    private readonly logger: DurableLogger,
  ) {}

  subscribe(listener: (notification: Notification) => void): () => void {
    this.listeners.add(listener);
    this.loop ??= this.run();
    return () => this.listeners.delete(listener);
  }

  /** Ends the connection (also one still being made) and stops reconnecting; idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.hangUp?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let backoffMs = 100;
    while (!this.stopping) {
      try {
        await this.listen();
        backoffMs = 100;
      } catch (error) {
        if (this.stopping) break;
        this.logger.warn(`LISTEN connection failed, retrying in ${backoffMs} ms: ${redact((error as Error).message)}`);
        await delay(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  /** Resolves when stopped; rejects when the connection fails or ends. */
  private async listen(): Promise<void> {
    const client = this.connect();
    let fail: (error: Error) => void = () => undefined;
    // Listened to for the client's whole life: an 'error' event nobody listens to kills the process.
    client.on('error', (error) => fail(error));
    try {
      await new Promise<void>((resolve, reject) => {
        this.hangUp = resolve;
        fail = reject;
        if (this.stopping) return resolve();
        client.on('notification', ({ channel, payload }) => this.emit({ channel, payload: payload ?? '' }));
        client.on('end', () => reject(new Error('the LISTEN connection ended')));
        const listen = this.channels.map((channel) => `listen "${channel}"`).join('; ');
        client.connect().then(() => client.query(listen)).then(() => this.emit(undefined), reject);
      });
    } finally {
      this.hangUp = undefined;
      fail = () => undefined;
      // Also ends a connection still being made (at the latest when its connect timeout fires).
      await client.end().catch(() => undefined);
    }
  }

  private emit(notification: Notification): void {
    for (const listener of this.listeners) listener(notification);
  }
}
