import { InvalidArgumentError } from '../lib/errors/invalid-argument.error.js';

const SAFE_IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

/**
 * The schema name is the only identifier that comes from configuration; it is checked once,
 * here, and every statement uses the quoted result.
 */
export function quoteSchema(schema: string): string {
  assertSchemaName(schema);
  return `"${schema}"`;
}

export function assertSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !SAFE_IDENTIFIER.test(schema)) {
    throw new InvalidArgumentError(
      `schema must be a lower-case SQL identifier of at most 48 characters (letters, digits, _), got ${JSON.stringify(schema)}`,
    );
  }
}
