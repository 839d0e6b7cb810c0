import { EntitySchema } from 'typeorm';
import { assertSchemaName } from '../engine/sql/schema-name.js';
import type { TaskState } from '../interfaces/task-snapshot.interface.js';

/** A row of `<schema>.tasks`. */
export interface TaskRow {
  id: string;
  queue: string;
  name: string;
  params: unknown;
  headers: Record<string, unknown>;
  state: TaskState;
  attempts: number;
  maxAttempts: number;
  retry: unknown;
  cancellation: unknown | null;
  idempotencyKey: string | null;
  runId: string;
  result: unknown | null;
  error: unknown | null;
  cancelAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  firstStartedAt: Date | null;
  finishedAt: Date | null;
  /** The task whose `ctx.spawn` created this one (null for a top-level task). */
  parentTaskId: string | null;
  /** The last `ctx.setProgress` value (null before the first). */
  progress: unknown | null;
  /** Opaque, kept by observers about the latest execution (telemetry: its trace context). */
  lastExecution: string | null;
  /** Higher is claimed first within a queue (`SpawnOptions.priority`). */
  priority: number;
  /** The key its name's concurrency limit applies per (`SpawnOptions.concurrencyKey`). */
  concurrencyKey: string | null;
}

/** A row of `<schema>.runs`: one attempt. */
export interface RunRow {
  id: string;
  taskId: string;
  queue: string;
  attempt: number;
  state: TaskState;
  availableAt: Date;
  workerId: string | null;
  leaseExpiresAt: Date | null;
  wakeEvent: string | null;
  error: unknown | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Bumped by every claim of the run: which execution may write for it. */
  claimEpoch: number;
  /** The children a join of this run waits for, how many are still running, and whether one completed child is enough. */
  joinChildren: string[] | null;
  joinOutstanding: number | null;
  joinAny: boolean | null;
  /** The deadline of that join (`join({ timeoutMs })`). */
  joinDeadline: Date | null;
  /** The task's priority, copied for the claim's index. */
  priority: number;
}

/** A row of `<schema>.checkpoints`. */
export interface CheckpointRow {
  taskId: string;
  name: string;
  value: unknown | null;
  attempt: number;
  createdAt: Date;
}

/** A row of `<schema>.events`; `emittedAt` null is a placeholder left by a waiter. */
export interface EventRow {
  queue: string;
  name: string;
  payload: unknown | null;
  emittedAt: Date | null;
  createdAt: Date;
}

/** A row of `<schema>.waits`: a run suspended until an event. */
export interface WaitRow {
  runId: string;
  stepName: string;
  taskId: string;
  queue: string;
  eventName: string;
  timeoutAt: Date | null;
  createdAt: Date;
}

export interface DurableEntities {
  task: EntitySchema<TaskRow>;
  run: EntitySchema<RunRow>;
  checkpoint: EntitySchema<CheckpointRow>;
  event: EntitySchema<EventRow>;
  wait: EntitySchema<WaitRow>;
}

/**
 * TypeORM entities for durable's tables, for apps that read them with their own repositories
 * (dashboards, reports). Add `Object.values(createDurableEntities())` to the DataSource's
 * entities. Read them; change them only through `DurableClient`. Durable's migrations, not
 * TypeORM's synchronize, own these tables.
 *
 * Every entity is `synchronize: false`: TypeORM's schema builder (`synchronize: true`,
 * `schema:sync`, `schema:log`, `migration:generate`) leaves their tables alone. The entities map
 * columns only, not the keys, indexes and checks durable's migrations made, so a builder that
 * synchronised them would plan to drop those (the cascades, the idempotency key, the claim index).
 */
export function createDurableEntities(schema = 'durable'): DurableEntities {
  assertSchemaName(schema);
  const uuid = { type: 'uuid' } as const;
  const text = { type: 'text' } as const;
  const integer = { type: 'integer' } as const;
  const json = { type: 'json' } as const;
  const jsonb = { type: 'jsonb' } as const;
  const time = { type: 'timestamp with time zone' } as const;
  const nullable = <T extends object>(column: T) => ({ ...column, nullable: true });
  const synchronize = false; // see above: durable's migrations own these tables
  return {
    task: new EntitySchema<TaskRow>({
      name: `${schema}.DurableTask`,
      tableName: 'tasks',
      schema,
      synchronize,
      columns: {
        id: { ...uuid, primary: true },
        queue: text,
        name: text,
        params: json,
        headers: json,
        state: text,
        attempts: integer,
        maxAttempts: { ...integer, name: 'max_attempts' },
        retry: jsonb,
        cancellation: nullable(jsonb),
        idempotencyKey: { ...nullable(text), name: 'idempotency_key' },
        runId: { ...uuid, name: 'run_id' },
        result: nullable(json),
        error: nullable(jsonb),
        cancelAt: { ...nullable(time), name: 'cancel_at' },
        createdAt: { ...time, name: 'created_at' },
        updatedAt: { ...time, name: 'updated_at' },
        firstStartedAt: { ...nullable(time), name: 'first_started_at' },
        finishedAt: { ...nullable(time), name: 'finished_at' },
        parentTaskId: { ...nullable(uuid), name: 'parent_task_id' },
        progress: nullable(json),
        lastExecution: { ...nullable(text), name: 'last_execution' },
        priority: integer,
        concurrencyKey: { ...nullable(text), name: 'concurrency_key' },
      },
    }),
    run: new EntitySchema<RunRow>({
      name: `${schema}.DurableRun`,
      tableName: 'runs',
      schema,
      synchronize,
      columns: {
        id: { ...uuid, primary: true },
        taskId: { ...uuid, name: 'task_id' },
        queue: text,
        attempt: integer,
        state: text,
        availableAt: { ...time, name: 'available_at' },
        workerId: { ...nullable(text), name: 'worker_id' },
        leaseExpiresAt: { ...nullable(time), name: 'lease_expires_at' },
        wakeEvent: { ...nullable(text), name: 'wake_event' },
        error: nullable(jsonb),
        createdAt: { ...time, name: 'created_at' },
        startedAt: { ...nullable(time), name: 'started_at' },
        finishedAt: { ...nullable(time), name: 'finished_at' },
        claimEpoch: { ...integer, name: 'claim_epoch' },
        joinChildren: { ...nullable(uuid), array: true, name: 'join_children' },
        joinOutstanding: { ...nullable(integer), name: 'join_outstanding' },
        joinAny: { type: 'boolean', nullable: true, name: 'join_any' },
        joinDeadline: { ...nullable(time), name: 'join_deadline' },
        priority: integer,
      },
    }),
    checkpoint: new EntitySchema<CheckpointRow>({
      name: `${schema}.DurableCheckpoint`,
      tableName: 'checkpoints',
      schema,
      synchronize,
      columns: {
        taskId: { ...uuid, name: 'task_id', primary: true },
        name: { ...text, primary: true },
        value: nullable(json),
        attempt: integer,
        createdAt: { ...time, name: 'created_at' },
      },
    }),
    event: new EntitySchema<EventRow>({
      name: `${schema}.DurableEvent`,
      tableName: 'events',
      schema,
      synchronize,
      columns: {
        queue: { ...text, primary: true },
        name: { ...text, primary: true },
        payload: nullable(json),
        emittedAt: { ...nullable(time), name: 'emitted_at' },
        createdAt: { ...time, name: 'created_at' },
      },
    }),
    wait: new EntitySchema<WaitRow>({
      name: `${schema}.DurableWait`,
      tableName: 'waits',
      schema,
      synchronize,
      columns: {
        runId: { ...uuid, name: 'run_id', primary: true },
        stepName: { ...text, name: 'step_name', primary: true },
        taskId: { ...uuid, name: 'task_id' },
        queue: text,
        eventName: { ...text, name: 'event_name' },
        timeoutAt: { ...nullable(time), name: 'timeout_at' },
        createdAt: { ...time, name: 'created_at' },
      },
    }),
  };
}
