import { redact } from '../db/database-errors.js';
import type { DurableLogger } from '../support/logger.js';

/** `none` when this process runs no worker (`worker: false`, or before the module started). */
export type WorkerState = 'none' | 'created' | 'running' | 'stopping' | 'stopped';

/** What this process's worker is doing now. */
export interface WorkerStatus {
  state: WorkerState;
  workerId?: string;
  queues: string[];
  concurrency: number;
  /** Handlers executing now. */
  inFlight: number;
  /** When the last claim query answered (whether or not it found work). */
  lastClaimAt?: Date;
  /** The last error of the claim loop, cleared by the next successful claim. */
  lastError?: { message: string; at: Date };
}

/** The run an observer hears about. */
export interface ObservedRun {
  taskId: string;
  runId: string;
  attempt: number;
  queue: string;
  taskName: string;
  workerId: string;
  /** Which execution of this attempt (1 for its first; a resumption after a sleep or wait counts on). */
  epoch: number;
  /** The task's headers (read-only): telemetry reads its trace context here. */
  headers: Readonly<Record<string, unknown>>;
}

/** How an execution ended (`onEnd`). */
export type ExecutionOutcome = 'completed' | 'failed' | 'suspended' | 'cancelled' | 'lease-lost' | 'shutdown' | 'unrecorded';

/**
 * Hears what the worker does, synchronously and after the fact. Telemetry, health and the
 * dashboard hang off this; an observer that throws is logged and never disturbs the worker.
 */
export interface WorkerObserver {
  /** A run was claimed and its handler is about to start. */
  onClaim?(run: ObservedRun): void;
  /** A step's result was checkpointed. */
  onStep?(run: ObservedRun, step: { name: string; durationMs: number }): void;
  /** The task completed. */
  onComplete?(run: ObservedRun, durationMs: number): void;
  /** The attempt failed (the task retries unless the failure was final). */
  onFailure?(run: ObservedRun, error: unknown): void;
  /** The run may no longer write: it was cancelled, or its lease expired and was taken over. */
  onLeaseLost?(run: ObservedRun, reason: 'cancelled' | 'lease-lost'): void;
  /** A step returned its checkpointed value without running (a replay). */
  onStepReplayed?(run: ObservedRun, step: { name: string }): void;
  /**
   * The execution ended (after `onComplete`, `onFailure` or `onLeaseLost`, if any): `suspended`
   * for a sleep, an event wait or a join; `unrecorded` when its outcome could not be written.
   */
  onEnd?(run: ObservedRun, outcome: ExecutionOutcome): void;
  /**
   * Wraps the execution of the handler (telemetry makes its span the active context here):
   * must call `execute` once and return its promise. Nested in the order observers were added.
   */
  aroundRun?<T>(run: ObservedRun, execute: () => Promise<T>): Promise<T>;
}

type Event = Exclude<keyof WorkerObserver, 'aroundRun'>;

/**
 * One per process: the worker's status, and the observers that hear about its runs. It exists
 * whether or not a worker runs, so that health checks and telemetry can be wired up front.
 */
export class DurableWorkerMonitor {
  private readonly observers = new Set<WorkerObserver>();
  private source: (() => WorkerStatus) | undefined;

  constructor(private readonly logger?: DurableLogger) {}

  status(): WorkerStatus {
    return this.source?.() ?? { state: 'none', queues: [], concurrency: 0, inFlight: 0 };
  }

  /** Adds an observer; the returned function removes it. */
  observe(observer: WorkerObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /** @internal The worker reports its status through this. */
  attach(source: () => WorkerStatus): void {
    this.source = source;
  }

  /** @internal Runs `execute` inside every observer's `aroundRun`; one that throws is skipped. */
  around<T>(run: ObservedRun, execute: () => Promise<T>): Promise<T> {
    let wrapped = execute;
    for (const observer of this.observers) {
      if (!observer.aroundRun) continue;
      const inner = wrapped;
      wrapped = () => {
        let called = false;
        const once = () => {
          called = true;
          return inner();
        };
        try {
          return observer.aroundRun!(run, once);
        } catch (error) {
          this.logger?.warn(`a worker observer threw in aroundRun: ${redact((error as Error)?.message ?? String(error))}`);
          return called ? Promise.reject(error) : inner();
        }
      };
    }
    return wrapped();
  }

  /** @internal */
  emit<E extends Event>(event: E, ...args: Parameters<NonNullable<WorkerObserver[E]>>): void {
    for (const observer of this.observers) {
      try {
        (observer[event] as ((...a: typeof args) => void) | undefined)?.(...args);
      } catch (error) {
        this.logger?.warn(`a worker observer threw in ${event}: ${redact((error as Error)?.message ?? String(error))}`);
      }
    }
  }
}
