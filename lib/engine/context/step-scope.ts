import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';

/**
 * Marks the code a step's function runs (and everything it starts), per context. A ctx call
 * from in there would be numbered differently on replay, where the step's function does not
 * run (its checkpoint is returned instead): every later checkpoint would get another name.
 */
const scope = new AsyncLocalStorage<{ owner: object; step: string }>();

/** Runs a step's function inside its scope. */
export function inStep<T>(owner: object, step: string, fn: () => T | Promise<T>): T | Promise<T> {
  return scope.run({ owner, step }, fn);
}

/** Refuses a call of `owner` made from inside one of its steps' functions. */
export function assertNotInStep(owner: object, call: string): void {
  const current = scope.getStore();
  if (current?.owner !== owner) return;
  throw new InvalidArgumentError(
    `ctx.${call} was called inside the function of step "${current.step}": a step's function must not call its task's ` +
    `context (on replay the function does not run, so the steps, sleeps and events it started would be numbered ` +
    `differently). Call it before or after the step, or make it a step of its own; ctx.heartbeat() is allowed.`,
  );
}
