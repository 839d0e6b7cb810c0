import { randomUUID } from 'node:crypto';
import { Observable, type Subscriber } from 'rxjs';
import { TaskNotFoundError } from '../../errors/task-not-found.error.js';
import type { TaskSnapshot } from '../../interfaces/task-snapshot.interface.js';
import { assertTaskId, toSnapshot } from '../client/snapshot.js';
import { redact } from '../db/database-errors.js';
import type { Notification, Notifier } from '../db/notifier.js';
import type { Row, Store } from '../db/store.js';
import type { DurableLogger } from '../support/logger.js';
import { timerMs } from '../support/wakeable.js';

/** @internal How often the hub polls and re-registers; tests shorten them. */
export interface WatchTiming {
  /** Every watched task is read again this often (one statement for all), in case a NOTIFY was lost. */
  pollIntervalMs: number;
  /** A registration nobody renewed for this long is ignored (its process died); renewed every third of it. */
  registrationTtlMs: number;
}

const DEFAULT_TIMING: WatchTiming = { pollIntervalMs: 1000, registrationTtlMs: 60_000 };
/** Ids per read statement. */
const CHUNK = 1000;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

interface Watcher {
  subscriber: Subscriber<TaskSnapshot>;
  /** What was emitted last (state, attempts, progress); undefined before the first snapshot. */
  last?: string;
}

/**
 * Every `client.watch` of one client: one LISTEN connection (the connection's notifier, shared
 * with the worker), one registration statement and one read statement per batch of changes,
 * and one poll timer, whatever the number of watchers. The database notifies only for task ids
 * registered in `watches` (see migration 0009), so nothing is sent while nothing is watched.
 */
export class WatchHub {
  private readonly watchers = new Map<string, Set<Watcher>>();
  private readonly id = randomUUID();
  private readonly timing: WatchTiming;
  private readonly toAdd = new Set<string>();
  private readonly toRemove = new Set<string>();
  private readonly dirty = new Set<string>();
  private syncing: Promise<void> | undefined;
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private renewedAt = 0;
  private stopListening: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly store: Store,
    private readonly notifier: Notifier | undefined,
    private readonly logger: DurableLogger,
    timing: Partial<WatchTiming> = {},
  ) {
    this.timing = { ...DEFAULT_TIMING, ...timing };
  }

  watch(taskId: string): Observable<TaskSnapshot> {
    assertTaskId(taskId);
    return new Observable<TaskSnapshot>((subscriber) => {
      if (this.closed) {
        subscriber.complete();
        return undefined;
      }
      const watcher: Watcher = { subscriber };
      this.add(taskId, watcher);
      return () => this.remove(taskId, watcher);
    });
  }

  /** How many tasks and watchers this hub serves now. */
  get size(): { tasks: number; watchers: number } {
    let watchers = 0;
    for (const set of this.watchers.values()) watchers += set.size;
    return { tasks: this.watchers.size, watchers };
  }

  /** Completes every watcher and waits for the last registration statement. */
  async close(): Promise<void> {
    this.closed = true;
    for (const set of [...this.watchers.values()]) for (const watcher of [...set]) watcher.subscriber.complete();
    // The unregistration that completing them scheduled (best effort: registrations expire anyway).
    while (this.scheduled || this.syncing) await (this.syncing ?? new Promise((resolve) => setImmediate(resolve)));
  }

  private add(taskId: string, watcher: Watcher): void {
    let set = this.watchers.get(taskId);
    if (!set) {
      set = new Set();
      this.watchers.set(taskId, set);
      this.toRemove.delete(taskId);
      this.toAdd.add(taskId);
    }
    set.add(watcher);
    if (this.watchers.size === 1 && set.size === 1) this.start();
    this.dirty.add(taskId);
    this.schedule();
  }

  private remove(taskId: string, watcher: Watcher): void {
    const set = this.watchers.get(taskId);
    if (!set?.delete(watcher) || set.size > 0) return;
    this.watchers.delete(taskId);
    this.dirty.delete(taskId);
    // Always removed, even with a registration still queued: a queued one may be a renewal (or a
    // re-registration after a reconnect) of a row that is in the table already.
    this.toAdd.delete(taskId);
    this.toRemove.add(taskId);
    if (this.watchers.size === 0) this.stop();
    this.schedule();
  }

  private start(): void {
    this.stopListening = this.notifier?.subscribe((notification) => this.notified(notification));
    this.renewedAt = Date.now();
    this.timer = setInterval(() => this.poll(), timerMs(this.timing.pollIntervalMs));
    this.timer.unref();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.stopListening?.();
    this.stopListening = undefined;
  }

  private notified(notification: Notification): void {
    const { watch } = this.store.sql.channels;
    if (notification === undefined) {
      // (Re)connected: what was sent meanwhile is lost, and a restarted server lost the registrations.
      for (const taskId of this.watchers.keys()) {
        this.toAdd.add(taskId);
        this.dirty.add(taskId);
      }
    } else if (notification.channel === watch && this.watchers.has(notification.payload)) {
      this.dirty.add(notification.payload);
    } else {
      return;
    }
    this.schedule();
  }

  private poll(): void {
    for (const taskId of this.watchers.keys()) this.dirty.add(taskId);
    if (Date.now() - this.renewedAt >= this.timing.registrationTtlMs / 3) {
      this.renewedAt = Date.now();
      for (const taskId of this.watchers.keys()) this.toAdd.add(taskId);
    }
    this.schedule();
  }

  /** One sync at a time; what arrives meanwhile goes into the next round of the same sync. */
  private schedule(): void {
    if (this.scheduled || this.syncing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.syncing = this.sync().then((ok) => {
        this.syncing = undefined;
        // After a failure the next poll tries again (no tight loop while the database is away).
        if (ok && this.pending()) this.schedule();
      });
    });
  }

  private pending(): boolean {
    return this.toAdd.size + this.toRemove.size + this.dirty.size > 0;
  }

  private async sync(): Promise<boolean> {
    while (this.pending()) {
      const add = [...this.toAdd];
      const remove = [...this.toRemove];
      const read = [...this.dirty].filter((taskId) => this.watchers.has(taskId));
      this.toAdd.clear();
      this.toRemove.clear();
      this.dirty.clear();
      try {
        // Registered before the read: a change after the read is notified.
        if (add.length + remove.length > 0) {
          await this.store.query(this.store.sql.watchRefresh(this.id, add, remove, this.timing.registrationTtlMs));
        }
        for (let i = 0; i < read.length; i += CHUNK) {
          const ids = read.slice(i, i + CHUNK);
          this.deliver(ids, await this.store.query(this.store.sql.getTasks(ids)));
        }
      } catch (error) {
        this.failed(error, add, remove, read);
        return false;
      }
    }
    return true;
  }

  private deliver(ids: string[], rows: Row[]): void {
    const found = new Map(rows.map((row) => [row.id as string, row]));
    for (const taskId of ids) {
      const row = found.get(taskId);
      for (const watcher of [...(this.watchers.get(taskId) ?? [])]) {
        if (!row) {
          watcher.subscriber.error(new TaskNotFoundError(taskId));
          continue;
        }
        const key = JSON.stringify([row.state, row.attempts, row.progress ?? null]);
        if (key === watcher.last) continue;
        watcher.last = key;
        watcher.subscriber.next(toSnapshot(row));
        if (TERMINAL.has(row.state as string)) watcher.subscriber.complete();
      }
    }
  }

  /** A watcher still without its first snapshot gets the error; the others wait for the next poll. */
  private failed(error: unknown, add: string[], remove: string[], read: string[]): void {
    for (const taskId of add) if (this.watchers.has(taskId)) this.toAdd.add(taskId);
    for (const taskId of remove) if (!this.watchers.has(taskId)) this.toRemove.add(taskId);
    if (this.closed) return;
    // Without watchers no poll runs: the unregistration is tried again on a timer of its own.
    if (this.watchers.size === 0 && this.toRemove.size > 0) setTimeout(() => this.schedule(), timerMs(this.timing.pollIntervalMs)).unref();
    this.logger.warn(`watch: could not read the watched tasks, retrying at the next poll: ${redact((error as Error)?.message ?? String(error))}`);
    for (const taskId of read) {
      for (const watcher of [...(this.watchers.get(taskId) ?? [])]) if (watcher.last === undefined) watcher.subscriber.error(error);
    }
  }
}
