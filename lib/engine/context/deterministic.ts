import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { toJson } from '../support/json.js';
import type { ExecutionCore } from './execution-core.js';

/** The kinds of deterministic values; their checkpoints are `value:<kind>`, `value:<kind>#2`, ... (never a step's `step:` name). */
type ValueKind = 'now' | 'random' | 'uuid';

/** `ctx.now()`: the database clock (the claim's database time plus the time elapsed here since), recorded once. */
export async function recordedNow(core: ExecutionCore): Promise<Date> {
  const iso = await recordValue(core, 'now', () => new Date(core.run.claimedAt.getTime() + (performance.now() - core.claimedAtLocal)).toISOString());
  return new Date(iso);
}

/** `ctx.random()`: a number in [0, 1) from 48 random bits, recorded once. */
export function recordedRandom(core: ExecutionCore): Promise<number> {
  return recordValue(core, 'random', () => randomBytes(6).readUIntBE(0, 6) / 2 ** 48);
}

/** `ctx.uuid()`: a random UUID, recorded once. */
export function recordedUuid(core: ExecutionCore): Promise<string> {
  return recordValue(core, 'uuid', () => randomUUID());
}

/**
 * The value recorded for this call (replays and retries read it back), or a fresh one that is
 * checkpointed through the worker's batched writes before it is returned.
 */
async function recordValue<T>(core: ExecutionCore, kind: ValueKind, produce: () => T): Promise<T> {
  core.ensureActive(kind);
  const key = core.names.next('value', kind);
  if (core.run.checkpoints.has(key)) return core.run.checkpoints.get(key) as T;
  return core.track(async () => {
    const json = toJson<T>(produce(), `ctx.${kind}()`, core.settings.maxPayloadBytes);
    core.budget.take(`ctx.${kind}()`, json.text);
    const outcome = await core.settings.write({
      kind: 'checkpoint', taskId: core.fence.taskId, runId: core.fence.runId, epoch: core.fence.epoch, name: key, value: json.text,
      attempt: core.run.attempt, leaseMs: core.settings.leaseMs,
    });
    const value = outcome === 'exists' ? await core.stored<T>(key, json.value) : (core.settle(outcome), json.value);
    core.run.checkpoints.set(key, value);
    return value;
  });
}
