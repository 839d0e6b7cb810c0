import type { WorkerWrite } from '../sql/statements.js';

/**
 * The `ctx.setProgress` values of one execution, coalesced: at most one progress write of the
 * run is on its way (in the worker's next `write_batch`); values set meanwhile replace each
 * other and only the last is sent after it. So a loop that sets progress a thousand times costs
 * a handful of writes, each sharing a batch (and a commit) with the other handlers' writes.
 */
export class ProgressWriter {
  /** The value waiting for the write on its way to settle (JSON text), if any. */
  private next: { text: string; waiters: Waiter[] } | undefined;
  private sending: Promise<void> | undefined;

  constructor(
    private readonly write: (write: WorkerWrite) => Promise<string>,
    private readonly base: Omit<WorkerWrite, 'kind' | 'value' | 'name'>,
    /** Told each write's outcome ('ok', 'cancelled', 'lost'); throws to refuse it. */
    private readonly settle: (outcome: string) => void,
  ) {}

  /** Resolves once this value, or a later one that replaced it, committed; rejects if the fence refused it. */
  set(text: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiters = this.next?.waiters ?? [];
      waiters.push({ resolve, reject });
      this.next = { text, waiters };
      this.sending ??= this.drain();
    });
  }

  /** Waits until every value set so far was written (or refused); never rejects. */
  async flush(): Promise<void> {
    while (this.sending) await this.sending;
  }

  private async drain(): Promise<void> {
    while (this.next) {
      const { text, waiters } = this.next;
      this.next = undefined;
      try {
        const outcome = await this.write({ ...this.base, kind: 'progress', value: text });
        this.settle(outcome);
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.sending = undefined;
  }
}

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}
