/** Handler classes made on the spot, for specs that need many small @DurableTask handlers. */
import { DurableTask, type DurableTaskHandler, type DurableTaskOptions, type TaskContext } from '../../lib/index.js';

/**
 * A new class named `className`, decorated with `@DurableTask(options)`, whose `run` returns
 * what `run(params, ctx)` returns (default: nothing). Each call makes another class.
 */
export function durableTask<P = unknown, R = void>(
  className: string,
  options: DurableTaskOptions,
  run: (params: P, ctx: TaskContext) => R | Promise<R> = () => undefined as R,
): new () => DurableTaskHandler<P, R> {
  const handler = class implements DurableTaskHandler<P, R> {
    async run(params: P, ctx: TaskContext): Promise<R> {
      return run(params, ctx);
    }
  };
  Object.defineProperty(handler, 'name', { value: className });
  DurableTask(options)(handler);
  return handler;
}
