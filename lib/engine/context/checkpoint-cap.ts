import { SerializationError } from '../../errors/serialization.error.js';

/**
 * The bytes a task's checkpoints may still take (`maxCheckpointBytesPerTask`). Only one
 * execution writes checkpoints of its task at a time (the claim epoch fences every other), so
 * the bytes its claim read back plus its own steps are the task's total; sleeps, event payloads
 * and emits of this execution count from the next claim on.
 */
export class CheckpointBudget {
  constructor(
    private used: number,
    private readonly cap: number,
  ) {}

  /** Counts a step's checkpoint (JSON text, null for undefined), or refuses it past the cap. */
  take(step: string, text: string | null): void {
    const bytes = text === null ? 0 : Buffer.byteLength(text);
    if (this.used + bytes > this.cap) {
      throw new SerializationError(
        `the result of step "${step}" (${bytes} bytes of JSON) would take this task's checkpoints over ` +
        `maxCheckpointBytesPerTask (${this.cap}) bytes in all, and every claim of the task reads them all back: keep ` +
        `large data outside durable (store it elsewhere and return a reference from the step), or raise maxCheckpointBytesPerTask`,
      );
    }
    this.used += bytes;
  }
}
