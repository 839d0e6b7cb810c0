import type { Store } from '../db/store.js';
import type { RunFence } from '../sql/statements.js';
import type { CheckpointBudget } from './checkpoint-cap.js';
import type { CheckpointNames } from './checkpoint-names.js';
import type { ClaimedRun, ContextSettings } from './claimed-run.js';

/**
 * What the context's calls share (the task context implements it): the run, its fence, the
 * checkpoint names and budget, and the helpers every call goes through. Child tasks
 * (`lib/engine/children/`) and deterministic values (`deterministic.ts`) are written against it.
 */
export interface ExecutionCore {
  readonly store: Store;
  readonly run: ClaimedRun;
  readonly settings: ContextSettings;
  readonly fence: RunFence;
  readonly names: CheckpointNames;
  readonly budget: CheckpointBudget;
  /** `performance.now()` when the context was made (the run's `claimedAt` on the local clock). */
  readonly claimedAtLocal: number;
  /** Throws the control signal once stopped; `call`: refused from inside a step's function too. */
  ensureActive(call?: string): void;
  /** Turns a transition's outcome into a return (when it is `proceed`) or a stop. */
  settle(outcome: string, proceed?: string): void;
  /** At most one call that may suspend is in flight (sleeps, event waits, joins). */
  suspendable<R>(call: () => Promise<R>): Promise<R>;
  /** Counts `call` as in flight (see the context's `idle`). */
  track<R>(call: () => Promise<R>): Promise<R>;
  /** The committed checkpoint `key` (`fallback` if it is gone). */
  stored<T>(key: string, fallback: T): Promise<T>;
}
