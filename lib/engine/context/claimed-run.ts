import type { SpawnOptions } from '../../interfaces/task-options.interface.js';
import type { TaskHandlerClass } from '../registry/task-metadata.js';
import type { SpawnRow, WorkerWrite } from '../sql/statements.js';

/** Checks a spawn and resolves it to its row, as `DurableClient.spawn` does (for `ctx.spawn`). */
export type SpawnResolver = (task: string | TaskHandlerClass, params: unknown, options: SpawnOptions) => SpawnRow;

/** What the worker claimed: one run and everything its handler needs to replay. */
export interface ClaimedRun {
  taskId: string;
  runId: string;
  /** Which claim of the run this is; every write of this execution is fenced on it. */
  epoch: number;
  /** This claim was the task's first start (a `defer` of it undoes that). */
  firstStart: boolean;
  attempt: number;
  queue: string;
  taskName: string;
  params: unknown;
  headers: Record<string, unknown>;
  /** Checkpoint name to stored value (`undefined` for a step that returned nothing). */
  checkpoints: Map<string, unknown>;
  /** The bytes of JSON of those checkpoints (the execution counts on from there). */
  checkpointBytes: number;
  /** The database clock when the run was claimed. */
  claimedAt: Date;
}

export interface ContextSettings {
  workerId: string;
  leaseMs: number;
  maxPayloadBytes: number;
  /** The cap on the bytes of all of a task's checkpoints: a step past it is refused. */
  maxCheckpointBytesPerTask: number;
  /** Where checkpoints go: batched with the other handlers' writes; resolves with the outcome. */
  write: (write: WorkerWrite) => Promise<string>;
  /** Resolves `ctx.spawn`'s task and options (the module's client); without it ctx.spawn is refused. */
  spawnRow?: SpawnResolver;
  /** Told after each step's checkpoint is written. */
  onStep?: (step: { name: string; durationMs: number }) => void;
  /** Told when a step returns its checkpointed value without running. */
  onStepReplayed?: (step: { name: string }) => void;
}
