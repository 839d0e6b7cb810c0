import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { CancellationPolicy, RetryStrategy } from '../../interfaces/task-options.interface.js';

/** Longest name in UTF-8 bytes: names are index keys, and a btree entry must fit a third of a page. */
export const MAX_NAME_BYTES = 1000;

/**
 * Names are data: any non-empty string that Postgres can store (no NUL, no lone surrogate) of
 * at most MAX_NAME_BYTES, matched exactly.
 */
export function assertName(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(`${what} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.includes('\u0000')) throw new InvalidArgumentError(`${what} must not contain a NUL character`);
  if (!value.isWellFormed()) throw new InvalidArgumentError(`${what} must not contain a lone surrogate (it is not valid UTF-8)`);
  if (Buffer.byteLength(value) > MAX_NAME_BYTES) {
    throw new InvalidArgumentError(`${what} is ${Buffer.byteLength(value)} bytes long; names may have at most ${MAX_NAME_BYTES} bytes of UTF-8`);
  }
}

/** A finite duration in milliseconds, `>= 0` (or `> 0` when `positive`). */
export function assertDuration(value: unknown, what: string, positive = false): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (positive && value === 0)) {
    throw new InvalidArgumentError(
      `${what} must be a finite number of milliseconds ${positive ? '> 0' : '>= 0'}, got ${describe(value)}`,
    );
  }
}

export function assertDate(value: unknown, what: string): asserts value is Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidArgumentError(`${what} must be a valid Date, got ${describe(value)}`);
  }
}

const MAX_INT32 = 2 ** 31 - 1;

export function assertPositiveInteger(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_INT32) {
    throw new InvalidArgumentError(`${what} must be an integer from 1 to ${MAX_INT32}, got ${describe(value)}`);
  }
}

const MIN_INT32 = -(2 ** 31);

export function assertInteger(value: unknown, what: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_INT32 || value > MAX_INT32) {
    throw new InvalidArgumentError(`${what} must be an integer from ${MIN_INT32} to ${MAX_INT32}, got ${describe(value)}`);
  }
}

/** Any date before 1970 is as past as 1970, and Postgres cannot store JS's earliest dates. */
export function storableDate(date: Date): Date {
  return date.getTime() < 0 ? new Date(0) : date;
}

export function assertRetryStrategy(value: unknown, what: string): asserts value is RetryStrategy {
  const retry = value as RetryStrategy | null;
  switch (retry?.kind) {
    case 'none':
      return;
    case 'fixed':
      return assertDuration(retry.delayMs, `${what}.delayMs`);
    case 'exponential':
      assertDuration(retry.baseDelayMs, `${what}.baseDelayMs`);
      if (retry.factor !== undefined && !(typeof retry.factor === 'number' && retry.factor >= 1 && Number.isFinite(retry.factor))) {
        throw new InvalidArgumentError(`${what}.factor must be a finite number >= 1, got ${describe(retry.factor)}`);
      }
      if (retry.maxDelayMs !== undefined) assertDuration(retry.maxDelayMs, `${what}.maxDelayMs`);
      return;
    default:
      throw new InvalidArgumentError(`${what} must be { kind: 'none' | 'fixed' | 'exponential', ... }, got ${describe(value)}`);
  }
}

export function assertCancellationPolicy(value: unknown, what: string): asserts value is CancellationPolicy {
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError(`${what} must be an object, got ${describe(value)}`);
  }
  const policy = value as CancellationPolicy;
  if (policy.maxDelayMs !== undefined) assertDuration(policy.maxDelayMs, `${what}.maxDelayMs`, true);
  if (policy.maxDurationMs !== undefined) assertDuration(policy.maxDurationMs, `${what}.maxDurationMs`, true);
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (value instanceof Date) return `Date(${value.getTime()})`;
  return typeof value;
}
