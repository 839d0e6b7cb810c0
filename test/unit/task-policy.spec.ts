/**
 * The retry strategy and cancellation policy are stored exactly as they were checked (issue 13,
 * item 4): rebuilt as plain objects from the checked fields, each field read once, so a toJSON,
 * a getter or an extra field cannot store what the check never saw (no database here).
 */
import { InvalidArgumentError } from '../../lib/errors/index.js';
import { toSpawnRow } from '../../lib/engine/client/spawn-request.js';
import type { ClientSettings } from '../../lib/engine/options.js';
import { resolvePolicy } from '../../lib/engine/registry/task-policy.js';
import type { RetryStrategy } from '../../lib/interfaces/task-options.interface.js';

const settings: ClientSettings = { queue: 'default', defaults: {}, maxPayloadBytes: 1024 * 1024 };

/** A strategy whose JSON is not what its fields say: the review's poison (factor 0). */
function poisonedRetry(): RetryStrategy {
  return {
    kind: 'exponential', baseDelayMs: 10, factor: 2,
    toJSON: () => ({ kind: 'exponential', baseDelayMs: 1000, factor: 0 }),
  } as RetryStrategy;
}

/** Answers one value to the check and another to whoever reads it next. */
function flipping<T>(first: T, then: T): () => T {
  let reads = 0;
  return () => (reads++ === 0 ? first : then);
}

describe('resolvePolicy stores what it checked', () => {
  it('a retry with a toJSON is stored as its checked fields', () => {
    const { retry } = resolvePolicy({ retry: poisonedRetry() }, undefined, {});
    expect(JSON.stringify(retry)).toBe('{"kind":"exponential","baseDelayMs":10,"factor":2}');
    expect(Object.getPrototypeOf(retry)).toBe(Object.prototype);
  });

  it('drops the fields of other kinds and unknown fields, and undefined ones', () => {
    const retry = { kind: 'fixed', delayMs: 5, baseDelayMs: 7, factor: 0, extra: 'x' } as unknown as RetryStrategy;
    expect(JSON.stringify(resolvePolicy({ retry }, undefined, {}).retry)).toBe('{"kind":"fixed","delayMs":5}');
    const none = { kind: 'none', delayMs: 'nonsense' } as unknown as RetryStrategy;
    expect(JSON.stringify(resolvePolicy({ retry: none }, undefined, {}).retry)).toBe('{"kind":"none"}');
    const exponential: RetryStrategy = { kind: 'exponential', baseDelayMs: 1, factor: undefined, maxDelayMs: 9 };
    expect(JSON.stringify(resolvePolicy({ retry: exponential }, undefined, {}).retry)).toBe('{"kind":"exponential","baseDelayMs":1,"maxDelayMs":9}');
  });

  it('reads each field once: a getter cannot answer the check one thing and the store another', () => {
    const retry = Object.defineProperties({}, {
      kind: { get: flipping('fixed', 'exponential'), enumerable: true },
      delayMs: { get: flipping(5, -1), enumerable: true },
    }) as RetryStrategy;
    expect(JSON.stringify(resolvePolicy({ retry }, undefined, {}).retry)).toBe('{"kind":"fixed","delayMs":5}');
    const factor = Object.defineProperty({ kind: 'exponential', baseDelayMs: 1 }, 'factor', { get: flipping(3, 0), enumerable: true });
    expect(JSON.stringify(resolvePolicy({ retry: factor as RetryStrategy }, undefined, {}).retry)).toBe('{"kind":"exponential","baseDelayMs":1,"factor":3}');
  });

  it('a getter that answers the check a bad value is refused', () => {
    const retry = Object.defineProperty({ kind: 'exponential', baseDelayMs: 1 }, 'factor', { get: flipping(0, 2), enumerable: true });
    expect(() => resolvePolicy({ retry: retry as RetryStrategy }, undefined, {})).toThrow(InvalidArgumentError);
  });

  it('the cancellation policy is rebuilt the same way', () => {
    const cancellation = {
      maxDelayMs: 100, other: 1, toJSON: () => ({ maxDelayMs: 'soon', maxDurationMs: -1 }),
    } as unknown as { maxDelayMs: number };
    expect(JSON.stringify(resolvePolicy({ cancellation }, undefined, {}).cancellation)).toBe('{"maxDelayMs":100}');
    const flipped = Object.defineProperty({}, 'maxDurationMs', { get: flipping(50, -5), enumerable: true });
    expect(JSON.stringify(resolvePolicy({ cancellation: flipped }, undefined, {}).cancellation)).toBe('{"maxDurationMs":50}');
    expect(JSON.stringify(resolvePolicy({ cancellation: {} }, undefined, {}).cancellation)).toBe('{}');
  });

  it('refuses what it refused before, with the same messages', () => {
    expect(() => resolvePolicy({ retry: 'x' as never }, undefined, {})).toThrow(/^retry must be \{ kind: 'none' \| 'fixed' \| 'exponential', \.\.\. \}, got "x"$/);
    // null is "not given", as before: the next level's value applies.
    expect(resolvePolicy({ retry: null as never }, undefined, { retry: { kind: 'none' } }).retry).toEqual({ kind: 'none' });
    expect(() => resolvePolicy({ retry: { kind: 'weird' } as never }, undefined, {})).toThrow(/^retry must be \{ kind:.*got object$/);
    expect(() => resolvePolicy({ retry: { kind: 'fixed', delayMs: -1 } }, undefined, {})).toThrow(/^retry\.delayMs must be/);
    expect(() => resolvePolicy({ retry: { kind: 'exponential', baseDelayMs: 1, factor: 0.5 } }, undefined, {})).toThrow(/^retry\.factor must be a finite number >= 1, got 0\.5$/);
    expect(() => resolvePolicy({ cancellation: 5 as never }, undefined, {})).toThrow(/^cancellation must be an object, got 5$/);
    expect(() => resolvePolicy({ cancellation: { maxDelayMs: 0 } }, undefined, {})).toThrow(/^cancellation\.maxDelayMs must be/);
  });

  it('the row a spawn stores holds the checked JSON', () => {
    const row = toSpawnRow('t', {}, { retry: poisonedRetry(), cancellation: { maxDurationMs: 60_000 } }, undefined, settings);
    expect(row.retry).toBe('{"kind":"exponential","baseDelayMs":10,"factor":2}');
    expect(row.cancellation).toBe('{"maxDurationMs":60000}');
    const defaults = toSpawnRow('t', {}, {}, undefined, settings);
    expect(defaults.retry).toBe('{"kind":"exponential","baseDelayMs":1000,"factor":2,"maxDelayMs":300000}');
    expect(defaults.cancellation).toBeNull();
  });
});
