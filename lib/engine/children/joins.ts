import { ChildCancelledError } from '../../errors/child-cancelled.error.js';
import { ChildFailedError } from '../../errors/child-failed.error.js';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import { TimeoutError } from '../../errors/timeout.error.js';
import type { JoinOptions, TaskHandle } from '../../interfaces/task-context.interface.js';
import { assertTaskId } from '../client/snapshot.js';
import type { ExecutionCore } from '../context/execution-core.js';
import { assertDuration, describe } from '../support/validation.js';

/** A join's checkpointed outcome, as SQL `join_tasks` builds it. */
type JoinOutcome =
  | { results: unknown[] }
  | { index: number; result: unknown }
  | { failed: { childTaskId: string; name: string; message: string } }
  | { cancelled: { childTaskId: string } }
  | { timedOut: true };

/** `ctx.join`: the child's result, after suspending until it is terminal. */
export async function joinOne<O>(core: ExecutionCore, handle: TaskHandle<O>, options: JoinOptions = {}): Promise<O> {
  core.ensureActive('join');
  if (options.timeoutMs !== undefined) assertDuration(options.timeoutMs, 'join timeoutMs');
  const outcome = await joinTasks(core, 'join', [handle], false, options.timeoutMs ?? null);
  return (outcome as { results: O[] }).results[0];
}

/** `ctx.joinAll`: every result in order, after one suspension until all children are terminal. */
export async function joinAll<O>(core: ExecutionCore, handles: readonly TaskHandle<O>[]): Promise<O[]> {
  core.ensureActive('joinAll');
  assertHandles(handles, 'joinAll');
  if (handles.length === 0) return [];
  const outcome = await joinTasks(core, 'joinAll', handles, false, null);
  return (outcome as { results: O[] }).results;
}

/** `ctx.joinAny`: the first child to complete, or the first error when none completed. */
export async function joinAny<O>(core: ExecutionCore, handles: readonly TaskHandle<O>[]): Promise<{ index: number; result: O }> {
  core.ensureActive('joinAny');
  assertHandles(handles, 'joinAny');
  if (handles.length === 0) throw new InvalidArgumentError('joinAny needs at least one handle');
  const outcome = await joinTasks(core, 'joinAny', handles, true, null);
  const { index, result } = outcome as { index: number; result: O };
  return { index, result };
}

/**
 * Reads the join's checkpoint, or asks SQL `join_tasks`: its outcome once the children it needs
 * are terminal (checkpointed), or a suspension until then (the children's terminal transitions
 * wake the run). Checkpoints are `<call>:<first child id>`, numbered when repeated.
 */
async function joinTasks(
  core: ExecutionCore, call: string, handles: readonly TaskHandle[], any: boolean, timeoutMs: number | null,
): Promise<JoinOutcome> {
  const children = handles.map((handle) => handleId(handle, call));
  const key = core.names.next(call, children[0]);
  let outcome = core.run.checkpoints.get(key) as JoinOutcome | undefined;
  if (!outcome) {
    const row = await core.suspendable(() => core.store.one(core.store.sql.joinTasks(core.fence, {
      key, children, any, timeoutMs, attempt: core.run.attempt, leaseMs: core.settings.leaseMs,
    })));
    if (row.outcome === 'not_child') {
      throw new InvalidArgumentError(`ctx.${call}: task ${String(row.value)} is not a child of this task (a task joins only the children its ctx.spawn created)`);
    }
    core.settle(row.outcome as string, 'checkpoint');
    outcome = row.value as JoinOutcome;
    core.run.checkpoints.set(key, outcome);
  }
  if ('failed' in outcome) throw new ChildFailedError(outcome.failed.childTaskId, { name: outcome.failed.name, message: outcome.failed.message });
  if ('cancelled' in outcome) throw new ChildCancelledError(outcome.cancelled.childTaskId);
  if ('timedOut' in outcome) throw new TimeoutError(`ctx.${call}: child task ${children[0]} did not finish within ${timeoutMs} ms`);
  return outcome;
}

function assertHandles(handles: unknown, call: string): asserts handles is readonly TaskHandle[] {
  if (!Array.isArray(handles)) throw new InvalidArgumentError(`${call} takes an array of task handles, got ${describe(handles)}`);
}

function handleId(handle: unknown, call: string): string {
  if (typeof handle !== 'object' || handle === null) {
    throw new InvalidArgumentError(`${call} takes task handles (from ctx.spawn), got ${describe(handle)}`);
  }
  const taskId = (handle as { taskId?: unknown }).taskId;
  assertTaskId(taskId);
  return taskId;
}
