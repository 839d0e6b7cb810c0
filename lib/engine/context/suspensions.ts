import { EventTimeoutError } from '../../errors/event-timeout.error.js';
import type { AwaitEventOptions } from '../../interfaces/task-context.interface.js';
import { toJson } from '../support/json.js';
import { assertDuration, assertName } from '../support/validation.js';
import type { ExecutionCore } from './execution-core.js';

type EventOutcome = { payload: unknown } | { timedOut: true };

/** `ctx.sleepFor` / `sleepUntil`: the wake time is checkpointed; a past one returns at once. */
export async function sleep(core: ExecutionCore, name: string, until: Date | null, ms: number | null): Promise<void> {
  assertName(name, 'sleep name');
  const key = core.names.next('sleep', name);
  const stored = core.run.checkpoints.get(key) as { wakeAt: string } | undefined;
  // A sleep that was already due when this run was claimed returns without a round trip.
  if (stored && new Date(stored.wakeAt) <= core.run.claimedAt) return;
  const row = await core.suspendable(() =>
    core.store.one(core.store.sql.sleep(core.fence, {
      key, wakeAt: until, durationMs: ms, attempt: core.run.attempt, leaseMs: core.settings.leaseMs,
    })),
  );
  core.settle(row.outcome as string, 'continue');
  core.run.checkpoints.set(key, { wakeAt: (row.wake_at as Date).toISOString() });
}

/** `ctx.awaitEvent`: the event's payload, suspending until it is emitted; the outcome is checkpointed. */
export async function awaitEvent<T>(core: ExecutionCore, eventName: string, options: AwaitEventOptions): Promise<T> {
  assertName(eventName, 'event name');
  if (options.timeoutMs !== undefined) assertDuration(options.timeoutMs, 'awaitEvent timeoutMs');
  if (options.stepName !== undefined) assertName(options.stepName, 'awaitEvent stepName');
  const key = core.names.next('event', options.stepName ?? eventName);
  let outcome = core.run.checkpoints.get(key) as EventOutcome | undefined;
  if (!outcome) {
    const row = await core.suspendable(() =>
      core.store.one(core.store.sql.awaitEvent(core.fence, {
        queue: core.run.queue, eventName, key, timeoutMs: options.timeoutMs ?? null,
        attempt: core.run.attempt, leaseMs: core.settings.leaseMs,
      })),
    );
    core.settle(row.outcome as string, 'checkpoint');
    outcome = row.value as EventOutcome;
    core.run.checkpoints.set(key, outcome);
  }
  if ('timedOut' in outcome) throw new EventTimeoutError(eventName);
  return outcome.payload as T;
}

/** `ctx.emitEvent`: emits on the task's queue once (the checkpoint keeps a replay from emitting again). */
export async function emitEvent(core: ExecutionCore, eventName: string, payload: unknown): Promise<void> {
  assertName(eventName, 'event name');
  const key = core.names.next('emit', eventName);
  if (core.run.checkpoints.has(key)) return;
  const json = toJson(payload ?? null, `the payload of event "${eventName}"`, core.settings.maxPayloadBytes);
  const row = await core.track(() => core.store.one(core.store.sql.emitFromTask(core.fence, {
    key, queue: core.run.queue, eventName, payload: json.text ?? 'null', attempt: core.run.attempt, leaseMs: core.settings.leaseMs,
  })));
  core.settle(row.outcome as string);
  core.run.checkpoints.set(key, { emitted: true });
}
