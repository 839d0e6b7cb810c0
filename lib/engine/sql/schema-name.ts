import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';

const SAFE_IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;
// Postgres' own schemas: pg_* cannot be created, information_schema must not be written to.
const RESERVED = /^(pg_.*|information_schema)$/;

/**
 * The schema name is the only identifier that comes from configuration; it is checked once,
 * here, and every statement uses the quoted result.
 */
export function quoteSchema(schema: string): string {
  assertSchemaName(schema);
  return `"${schema}"`;
}

export function assertSchemaName(schema: unknown): asserts schema is string {
  if (typeof schema !== 'string' || !SAFE_IDENTIFIER.test(schema) || RESERVED.test(schema)) {
    throw new InvalidArgumentError(
      `schema must be a lower-case SQL identifier of at most 48 characters (letters, digits, _), not pg_* or information_schema, got ${JSON.stringify(schema)}`,
    );
  }
}
