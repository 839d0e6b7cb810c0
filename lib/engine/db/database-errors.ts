import { types } from 'node:util';
import { DatabaseTimeoutError } from '../../errors/database-timeout.error.js';
import { DatabaseUnavailableError } from '../../errors/database-unavailable.error.js';
import { DurableError } from '../../errors/durable.error.js';
import { OutcomeUnknownError } from '../../errors/outcome-unknown.error.js';

// Connection-level failures: network errors (ENOENT and EACCES: a unix socket that is missing or
// closed to us), and SQLSTATE classes 08 (connection exception),
// 57P (operator intervention: shutdown, crash), 53300 (too many connections), 28 (the server
// refused the credentials) and 3D000 (no such database).
const CONNECTION_CODES = /^(ECONNREFUSED|ECONNRESET|ENOENT|EACCES|ETIMEDOUT|EPIPE|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN|08...|57P0[1-3]|53300|28...|3D000)$/;
const CONNECTION_MESSAGES = /Connection terminated|connection timeout|Client has encountered a connection error|timeout exceeded when trying to connect|Cannot use a pool after calling end/i;
// pg's query_timeout: the statement was sent and no answer came back.
const NO_ANSWER = /^Query read timeout$/;

/**
 * The database gave no definite answer: it could not be reached, the connection broke, or a
 * statement was never answered (OutcomeUnknownError). Such a failure says nothing about the
 * other statements of a batch, so they are not retried one by one.
 */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError || error instanceof OutcomeUnknownError) return true;
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (typeof code === 'string' && CONNECTION_CODES.test(code)) ||
    (typeof message === 'string' && (CONNECTION_MESSAGES.test(message) || NO_ANSWER.test(message)));
}

/** The server cancelled the statement for running or waiting too long: it was rolled back. */
function isServerTimeout(error: Error): boolean {
  const { code } = error as { code?: unknown };
  return code === '55P03' || (code === '57014' && /statement timeout/i.test(error.message));
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
  if (NO_ANSWER.test(original.message)) {
    return new OutcomeUnknownError(
      'PostgreSQL did not answer the statement in time (queryTimeoutMs and a margin: a network partition, or a server that stopped responding): ' +
        'it may or may not have committed. Check before retrying a write, e.g. spawn again with the same idempotencyKey or look the task up.',
    );
  }
  if (isServerTimeout(original)) {
    return new DatabaseTimeoutError(
      `PostgreSQL cancelled the statement (${scrub(original.message)}): it was rolled back and nothing was written, so retrying is safe. ` +
        'A durable statement may run for queryTimeoutMs and wait half as long for a lock held by another transaction.',
      (original as { code?: unknown }).code as string,
    );
  }
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
