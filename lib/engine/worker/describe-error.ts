import { isError } from '../db/database-errors.js';

/** The largest message and stack a recorded failure keeps, in bytes of UTF-8. */
export const MAX_MESSAGE_BYTES = 8 * 1024;
export const MAX_STACK_BYTES = 32 * 1024;

/** What a failed attempt records: `{ name, message, stack?, truncated? }`. */
export interface DescribedError {
  name: string;
  message: string;
  stack?: string;
  /** The full sizes, in bytes, of a message or stack that was cut. */
  truncated?: { message?: number; stack?: number };
}

/**
 * Describes any thrown value for storage, and never throws itself: a `name` that is not a
 * string, getters that throw, an object without prototype, a value `String()` refuses. Text is
 * made storable (no NUL, no lone surrogate) and capped; a cut text ends with
 * `[truncated: N bytes in all]` and `truncated` gives the full sizes.
 */
export function describeError(error: unknown): DescribedError {
  const truncated: NonNullable<DescribedError['truncated']> = {};
  let described: DescribedError;
  if (safe(() => isError(error), false)) {
    const e = error as Error;
    const name = read(() => e.name);
    const stack = read(() => e.stack);
    described = {
      name: typeof name === 'string' && name !== '' ? name : isPrimitive(name) && name !== undefined ? String(name) : 'Error',
      message: capped(textOf(read(() => e.message), 'message'), MAX_MESSAGE_BYTES, (bytes) => (truncated.message = bytes)),
      ...(typeof stack === 'string' && stack !== ''
        ? { stack: capped(stack, MAX_STACK_BYTES, (bytes) => (truncated.stack = bytes)) }
        : {}),
    };
  } else {
    described = {
      name: 'Error',
      message: capped(valueText(error), MAX_MESSAGE_BYTES, (bytes) => (truncated.message = bytes)),
    };
  }
  described.name = capped(described.name, 256, () => undefined);
  if (Object.keys(truncated).length > 0) described.truncated = truncated;
  return described;
}

const UNREADABLE = Symbol('unreadable');

function read(get: () => unknown): unknown {
  try {
    return get();
  } catch (error) {
    return { [UNREADABLE]: safe(() => String((error as Error)?.message ?? error), 'it threw') };
  }
}

function textOf(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && UNREADABLE in value) return `(unreadable ${what}: ${String((value as Record<symbol, unknown>)[UNREADABLE])})`;
  return value === undefined ? '' : valueText(value);
}

/** `String(value)` for the usual values; JSON or the type's tag where that throws. */
function valueText(value: unknown): string {
  if (typeof value === 'string') return value;
  const text = safe(() => String(value), undefined);
  if (text !== undefined && text !== '[object Object]') return text;
  const json = safe(() => JSON.stringify(value), undefined);
  return json ?? text ?? safe(() => Object.prototype.toString.call(value), 'an unprintable value');
}

function isPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}

function safe<T, F>(fn: () => T, fallback: F): T | F {
  try {
    return fn();
  } catch {
    return fallback;
  }
}

/** Storable (Postgres keeps neither NUL nor lone surrogates) and at most `max` bytes of UTF-8. */
function capped(text: string, max: number, onCut: (bytes: number) => void): string {
  const storable = text.toWellFormed().replaceAll('\u0000', '\\u0000');
  const bytes = Buffer.byteLength(storable);
  if (bytes <= max) return storable;
  onCut(bytes);
  const note = ` … [truncated: ${bytes} bytes in all]`;
  const room = max - Buffer.byteLength(note);
  // Cut at a character boundary: decoding a cut sequence would add a replacement character.
  let head = Buffer.from(storable).subarray(0, Math.max(room, 0)).toString('utf8');
  while (Buffer.byteLength(head) > room) head = head.slice(0, -1);
  return `${head.toWellFormed()}${note}`;
}
