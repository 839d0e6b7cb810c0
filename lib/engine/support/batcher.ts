export interface BatcherOptions<I> {
  /** Items in one batch. */
  maxBatch: number;
  /** Batches on their way at once; more items wait for the next one. */
  maxInFlight: number;
  /** Items with equal keys never share a batch (a later one waits for the next). */
  exclusiveKey?: (item: I) => string;
}

interface Queued<I, O> {
  item: I;
  resolve(value: O): void;
  reject(error: unknown): void;
}

/**
 * Group commit: items added while batches are on their way are sent together in the next one
 * (one statement, one commit). Each item's promise settles with its own outcome once its batch
 * is done.
 */
export class Batcher<I, O> {
  private queue: Queued<I, O>[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(
    private readonly send: (items: I[]) => Promise<PromiseSettledResult<O>[]>,
    private readonly options: BatcherOptions<I>,
  ) {}

  add(item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.queue.length === 0) return;
    this.scheduled = true;
    // After the current turn, so that items added together share a batch.
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.take();
    this.inFlight += 1;
    try {
      const results = await this.send(batch.map((queued) => queued.item));
      results.forEach((result, index) => {
        if (result.status === 'fulfilled') batch[index].resolve(result.value);
        else batch[index].reject(result.reason);
      });
    } catch (error) {
      for (const queued of batch) queued.reject(error);
    } finally {
      this.inFlight -= 1;
      this.schedule();
    }
  }

  private take(): Queued<I, O>[] {
    const { maxBatch, exclusiveKey } = this.options;
    const batch: Queued<I, O>[] = [];
    const keys = new Set<string>();
    const rest: Queued<I, O>[] = [];
    for (const queued of this.queue) {
      const key = exclusiveKey?.(queued.item);
      if (batch.length < maxBatch && (key === undefined || !keys.has(key))) {
        if (key !== undefined) keys.add(key);
        batch.push(queued);
      } else {
        rest.push(queued);
      }
    }
    this.queue = rest;
    return batch;
  }
}
