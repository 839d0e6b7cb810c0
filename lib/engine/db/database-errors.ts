import { types } from 'node:util';
import { DatabaseUnavailableError } from '../../errors/database-unavailable.error.js';
import { DurableError } from '../../errors/durable.error.js';

// Connection-level failures: network errors, and SQLSTATE classes 08 (connection exception),
// 57P (operator intervention: shutdown, crash), 53300 (too many connections), 28 (the server
// refused the credentials) and 3D000 (no such database).
const CONNECTION_CODES = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN|08...|57P0[1-3]|53300|28...|3D000)$/;
const CONNECTION_MESSAGES = /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|Cannot use a pool after calling end|Query read timeout/i;

export function isConnectionError(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (typeof code === 'string' && CONNECTION_CODES.test(code)) ||
    (typeof message === 'string' && CONNECTION_MESSAGES.test(message));
}

/** Replaces the password of every `scheme://user:password@` in a text. */
export function redact(text: string): string {
  return text.replace(/(\w+:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@');
}

/** Errors leave durable typed, and with no password in their message or stack. */
export function translateDatabaseError(error: unknown, password?: string): Error {
  if (error instanceof DurableError) return error;
  const original = isError(error) ? error : new Error(String(error));
  const scrub = (text: string) => {
    let out = redact(text);
    if (password) out = out.split(password).join('***');
    return out;
  };
  if (isConnectionError(original)) {
    const wrapped = new DatabaseUnavailableError(
      `PostgreSQL is unreachable or refused the connection (check that it is up and the databaseUrl): ${scrub(original.message)}`,
    );
    (wrapped as { code?: unknown }).code = (original as { code?: unknown }).code;
    return wrapped;
  }
  original.message = scrub(original.message);
  if (original.stack) original.stack = scrub(original.stack);
  return original;
}

/** Also true for errors made in another realm (Node's own, under Jest's VM modules). */
export function isError(value: unknown): value is Error {
  return value instanceof Error || types.isNativeError(value);
}
