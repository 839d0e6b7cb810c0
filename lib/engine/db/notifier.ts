import type { Client, QueryConfig } from 'pg';
import { isConnectionError, redact } from './database-errors.js';
import { timerMs, Wakeable } from '../support/wakeable.js';
import type { DurableLogger } from '../support/logger.js';

/** A statement kept on the LISTEN connection's sessions (`Notifier.onSession`). */
export interface SessionStatement {
  /** Runs it again on the connection if it is up. */
  again(): void;
  /** No more on new connections; runs its `undo` on the connection if it is up. */
  end(): Promise<void>;
}

/** A notification, or `undefined` after (re)connecting: anything sent meanwhile was lost. */
export type Notification = { channel: string; payload: string } | undefined;

/** @internal How the LISTEN connection is watched and re-made; tests shorten them. */
export interface NotifierTiming {
  /** A `select 1` on the LISTEN connection this often (TCP keep-alive cannot see a peer that is up but silent). */
  pingIntervalMs: number;
  /** A ping without an answer after this long ends the connection, and a new one is made. */
  pingTimeoutMs: number;
  /** Back-off between failed attempts, doubling from the first to the last. */
  minBackoffMs: number;
  maxBackoffMs: number;
}

const DEFAULT_TIMING: NotifierTiming = { pingIntervalMs: 30_000, pingTimeoutMs: 10_000, minBackoffMs: 100, maxBackoffMs: 5000 };
/** How long `stop()` lets a connection say goodbye before its socket is destroyed (a partition never acknowledges). */
const END_GRACE_MS = 1000;

/**
 * Holds one connection in LISTEN on durable's channels and passes each notification to the
 * listeners. The connection is a client of its own (`connect` makes a new, unconnected one for
 * each attempt), never one checked out of a pool: whoever owns a pool can end it at any time
 * without waiting for durable. Notifications only make things fast; polling and the fenced
 * writes remain the guarantee, so a lost connection is logged and re-established, and a ping
 * finds a connection that went silent (a half-open TCP connection, a partition).
 */
export class Notifier {
  private hangUp: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private readonly pause = new Wakeable();
  private readonly listeners = new Set<(notification: Notification) => void>();
  private readonly timing: NotifierTiming;
  /** The live connection's next ping: when it is due, and the function that sends it now. */
  private nextPing: { at: number; send: () => Promise<void> } | undefined;
  /** The connection once made (until it ends): its statements, in turn; and what runs on each connection made (`onSession`). */
  private live: Run | undefined;
  private readonly sessionStatements = new Set<QueryConfig>();

  constructor(
    private readonly connect: () => Client,
    private readonly channels: string[],
    private readonly logger: DurableLogger,
    timing: Partial<NotifierTiming> = {},
  ) {
    this.timing = { ...DEFAULT_TIMING, ...timing };
  }

  /**
   * Adds a listener; the first one opens the connection. The returned function removes it, and
   * removing the last one closes the connection (a later listener opens a new one).
   */
  subscribe(listener: (notification: Notification) => void): () => void {
    this.listeners.add(listener);
    if (!this.loop && !this.stopping) this.loop = this.run();
    return () => {
      if (!this.listeners.delete(listener) || this.listeners.size > 0) return;
      this.hangUp?.();
      this.pause.wake();
    };
  }

  /**
   * Runs `statement` on the LISTEN connection: now if it is up, and on every connection made
   * after it (a worker's liveness lock lives as long as the session); `again()` runs it once more
   * on the connection if it is up. `end()` stops that and runs `undo` on the connection if it is
   * up. A statement that fails is logged.
   */
  onSession(statement: QueryConfig, undo: QueryConfig): SessionStatement {
    this.sessionStatements.add(statement);
    const again = () => {
      if (this.live && this.sessionStatements.has(statement)) void this.runOnSession(this.live, statement);
    };
    again();
    return {
      again,
      end: async () => {
        if (!this.sessionStatements.delete(statement) || !this.live) return;
        await this.runOnSession(this.live, undo);
      },
    };
  }

  private async runOnSession(run: Run, statement: QueryConfig): Promise<void> {
    // With the ping's timeout: a connection that stops answering must not hold up the pings behind it.
    await run({ ...statement, query_timeout: timerMs(this.timing.pingTimeoutMs) } as QueryConfig).catch((error: Error) => {
      // A broken connection is reported (and re-made) by the loop; the statement runs on the next one.
      if (!isConnectionError(error)) this.logger.warn(`a statement on the LISTEN connection failed: ${redact(error.message)}`);
    });
  }

  /**
   * Sends the LISTEN connection's ping now if it is due within `withinMs` (less than half the
   * ping interval), so that an idle worker's poll can stand in for it; resolves whether it did,
   * once the ping answered or failed (a failure ends the connection, as a late ping does).
   */
  async pingIfDue(withinMs: number): Promise<boolean> {
    const next = this.nextPing;
    if (!next || withinMs * 2 >= this.timing.pingIntervalMs || next.at - Date.now() > withinMs) return false;
    await next.send();
    return true;
  }

  /** Ends the connection (also one still being made) and any back-off, and stops reconnecting; idempotent. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.hangUp?.();
    this.pause.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    let backoffMs = this.timing.minBackoffMs;
    while (!this.stopping && this.listeners.size > 0) {
      try {
        await this.listen();
        backoffMs = this.timing.minBackoffMs;
      } catch (error) {
        if (this.stopping) break;
        this.logger.warn(`LISTEN connection failed, retrying in ${backoffMs} ms: ${redact((error as Error).message)}`);
        await this.pause.wait(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.timing.maxBackoffMs);
      }
    }
    // In the same turn as the check above: a listener added from now on starts a new loop.
    this.loop = undefined;
  }

  /** Resolves when stopped; rejects when the connection fails, ends or stops answering pings. */
  private async listen(): Promise<void> {
    const client = this.connect();
    let fail: (error: Error) => void = () => undefined;
    let stopPinging = () => undefined as void;
    let run: Run | undefined;
    let failed = false;
    // Listened to for the client's whole life: an 'error' event nobody listens to kills the process.
    client.on('error', (error) => fail(error));
    try {
      await new Promise<void>((resolve, reject) => {
        this.hangUp = resolve;
        fail = (error) => {
          failed = true;
          reject(error);
        };
        if (this.stopping || this.listeners.size === 0) return resolve();
        client.on('notification', ({ channel, payload }) => this.emit({ channel, payload: payload ?? '' }));
        client.on('end', () => fail(new Error('the LISTEN connection ended')));
        const listen = this.channels.map((channel) => `listen "${channel}"`).join('; ');
        client.connect().then(() => {
          // From now on `onSession` runs a new statement itself; those before it run here.
          run = inTurn(client);
          this.live = run;
          // The LISTEN last: it stays the connection's `query` in pg_stat_activity until a ping.
          const session = [...this.sessionStatements].map((statement) => this.runOnSession(run!, statement));
          return Promise.all([...session, run({ text: listen })]);
        }).then(() => {
          stopPinging = this.ping(run!, (error) => fail(error));
          this.emit(undefined);
        }, (error: Error) => fail(error));
      });
    } finally {
      this.hangUp = undefined;
      if (run && this.live === run) this.live = undefined;
      fail = () => undefined;
      stopPinging();
      // Also ends a connection still being made (at the latest when its connect timeout fires).
      await endClient(client, failed ? 0 : END_GRACE_MS);
    }
  }

  /**
   * Pings every `pingIntervalMs` (or sooner, through `pingIfDue`), one ping at a time; a ping not
   * answered within `pingTimeoutMs` fails the connection. Returns the function that stops pinging.
   */
  private ping(run: Run, fail: (error: Error) => void): () => void {
    const { pingIntervalMs, pingTimeoutMs } = this.timing;
    let stopped = false;
    let sending: Promise<void> | undefined;
    const send = (): Promise<void> => {
      sending ??= run({ text: 'select 1', query_timeout: timerMs(pingTimeoutMs) } as QueryConfig).then(
        () => {
          sending = undefined;
          if (stopped) return;
          timer.refresh();
          this.nextPing = { at: Date.now() + pingIntervalMs, send };
        },
        (error: Error) => fail(new Error(/read timeout/i.test(error.message)
          ? `the LISTEN connection did not answer a ping within ${pingTimeoutMs} ms`
          : `a ping on the LISTEN connection failed: ${error.message}`)),
      );
      return sending;
    };
    const timer = setTimeout(() => void send(), timerMs(pingIntervalMs));
    timer.unref();
    this.nextPing = { at: Date.now() + pingIntervalMs, send };
    return () => {
      stopped = true;
      this.nextPing = undefined;
      clearTimeout(timer);
    };
  }

  private emit(notification: Notification): void {
    for (const listener of this.listeners) listener(notification);
  }
}

/** Sends a statement on the LISTEN connection once the ones sent before it answered. */
type Run = (statement: QueryConfig) => Promise<unknown>;

/** The client's statements one after another (pg 8 warns when a client is given one while it runs another; pg 9 refuses). */
function inTurn(client: Client): Run {
  let last: Promise<unknown> = Promise.resolve();
  return (statement) => {
    const next = last.then(() => client.query(statement));
    last = next.catch(() => undefined);
    return next;
  };
}

/** Ends the client, giving it `graceMs` to say goodbye; then its socket is destroyed. */
async function endClient(client: Client, graceMs: number): Promise<void> {
  const socket = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  if (graceMs === 0) socket?.destroy();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      socket?.destroy();
      resolve();
    }, graceMs);
  });
  await Promise.race([client.end().catch(() => undefined), late]);
  clearTimeout(timer);
}
