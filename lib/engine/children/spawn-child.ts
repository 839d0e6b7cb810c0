import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { ChildSpawnOptions, TaskHandle } from '../../interfaces/task-context.interface.js';
import type { ExecutionCore } from '../context/execution-core.js';
import type { TaskHandlerClass } from '../registry/task-metadata.js';
import { assertName, describe } from '../support/validation.js';

/**
 * `ctx.spawn`: the child task and the parent's checkpoint of its handle are written by one fenced
 * transaction (SQL `spawn_child`), so a replayed or retried parent gets the same handle back and
 * never spawns a second child. Bad input is refused by the client's checks before anything is written.
 */
export async function spawnChild<O>(
  core: ExecutionCore, stepName: string, task: string | TaskHandlerClass, params: unknown, options: ChildSpawnOptions = {},
): Promise<TaskHandle<O>> {
  core.ensureActive('spawn');
  assertName(stepName, 'spawn step name');
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(`spawn options must be an object, got ${describe(options)}`);
  if ('manager' in options && (options as { manager?: unknown }).manager !== undefined) {
    throw new InvalidArgumentError('ctx.spawn takes no manager: the child is spawned in the parent\'s own transaction, with its checkpoint');
  }
  const resolve = core.settings.spawnRow;
  if (!resolve) throw new InvalidArgumentError('ctx.spawn needs the module\'s DurableClient (this worker was made without one)');
  const row = resolve(task, params, options);
  const key = core.names.next('spawn', stepName);
  if (core.run.checkpoints.has(key)) return core.run.checkpoints.get(key) as TaskHandle<O>;
  const result = await core.track(() => core.store.one(core.store.sql.spawnChild(core.fence, {
    key, row, attempt: core.run.attempt, leaseMs: core.settings.leaseMs,
  })));
  core.settle(result.outcome as string, 'checkpoint');
  const handle = result.value as TaskHandle<O>;
  core.run.checkpoints.set(key, handle);
  return handle;
}
