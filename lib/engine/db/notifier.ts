import type { Pool, PoolClient } from 'pg';
import { redact } from './database-errors.js';
import { delay } from '../support/wakeable.js';
import type { DurableLogger } from '../support/logger.js';

/** A notification, or `undefined` after (re)connecting: anything sent meanwhile was lost. */
export type Notification = { channel: string; payload: string } | undefined;

/**
 * Holds one pooled connection in LISTEN on durable's channels and passes each notification to
 * the listeners. Notifications only make things fast; polling and the fenced writes remain the
 * guarantee, so a lost connection is logged and re-established.
 */
export class Notifier {
  private hangUp: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly listeners = new Set<(notification: Notification) => void>();

  constructor(
    private readonly pool: Pool,
    private readonly channels: string[],
    private readonly logger: DurableLogger,
  ) {}

  subscribe(listener: (notification: Notification) => void): () => void {
    this.listeners.add(listener);
    this.loop ??= this.run();
    return () => this.listeners.delete(listener);
  }

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

  /** Resolves when the connection ends. */
  private async listen(): Promise<void> {
    const client: PoolClient = await this.pool.connect();
    try {
      if (this.stopping) return;
      await new Promise<void>((resolve, reject) => {
        this.hangUp = resolve;
        client.on('notification', ({ channel, payload }) => this.emit({ channel, payload: payload ?? '' }));
        client.on('error', reject);
        client.on('end', () => resolve());
        const listen = this.channels.map((channel) => `listen "${channel}"`).join('; ');
        client.query(listen).then(() => this.emit(undefined), reject);
      });
    } finally {
      this.hangUp = undefined;
      // Destroyed, not returned: a connection in LISTEN must not serve queries.
      client.release(true);
    }
  }

  private emit(notification: Notification): void {
    for (const listener of this.listeners) listener(notification);
  }
}
