import { SerializationError } from '../../errors/serialization.error.js';

// Postgres jsonb cannot hold NUL, and a lone surrogate is not valid UTF-8.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A value checked and converted for storage: `text` for Postgres, `value` as JSON reads it back. */
export interface Json<T = unknown> {
  /** `null` stands for `undefined` (stored as SQL NULL). */
  text: string | null;
  value: T;
}

/**
 * Converts a value with JSON semantics (undefined properties dropped, `toJSON` honoured), and
 * refuses what JSON would silently lose or Postgres cannot store. `what` names the value in errors.
 */
export function toJson<T>(value: unknown, what: string, maxBytes: number): Json<T> {
  if (value === undefined) return { text: null, value: undefined as T };
  let text: string | undefined;
  try {
    // JSON.stringify itself refuses cycles; the replacer refuses what it would silently drop.
    text = JSON.stringify(value, (key: string, raw: unknown) => {
      // A boxed string is written as its content, so its content is what must be storable.
      const item = raw instanceof String ? raw.valueOf() : raw;
      if (item === undefined) return undefined; // dropped with its key, as JSON does
      if (UNSTORABLE.test(key)) throw unstorable(what, 'a key');
      switch (typeof item) {
        case 'function':
        case 'symbol':
          throw new SerializationError(`${what} contains a ${typeof item} at "${key}"; only JSON values can be stored`);
        case 'bigint':
          throw new SerializationError(`${what} contains a BigInt at "${key}"; convert it to a string or number first`);
        case 'string':
          if (UNSTORABLE.test(item)) throw unstorable(what, 'a string');
          return item;
        default:
          return item;
      }
    });
  } catch (error) {
    if (error instanceof SerializationError) throw error;
    throw new SerializationError(`${what} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined) return { text: null, value: undefined as T };
  if (Buffer.byteLength(text) > maxBytes) {
    throw new SerializationError(`${what} is ${Buffer.byteLength(text)} bytes of JSON, over the limit of ${maxBytes} (maxPayloadBytes)`);
  }
  return { text, value: JSON.parse(text) as T };
}

function unstorable(what: string, where: string): SerializationError {
  return new SerializationError(`${what} has ${where} with a NUL character or a lone surrogate, which PostgreSQL cannot store`);
}
