import { InvalidArgumentError as UsageError } from 'commander';
import { TASK_STATES, type TaskState } from '../interfaces/task-snapshot.interface.js';

// Parsers for commander: a bad value is a usage error (exit 2) that names what is expected.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

export function taskId(value: string): string {
  if (!UUID.test(value)) throw new UsageError('expected a task id (a UUID, as `tasks list` prints it)');
  return value.toLowerCase();
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new UsageError('expected a whole number of at least 1');
  return n;
}

/** `500ms`, `30s`, `15m`, `12h`, `7d`, `2w`, or plain milliseconds. */
export function duration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(value.trim());
  if (!match) throw new UsageError('expected a duration such as 30s, 15m, 12h or 7d (or milliseconds)');
  return Math.round(Number(match[1]) * UNITS[match[2] ?? 'ms']);
}

export function taskState(value: string): TaskState {
  if (!(TASK_STATES as readonly string[]).includes(value)) throw new UsageError(`expected one of ${TASK_STATES.join(', ')}`);
  return value as TaskState;
}

/** A JSON text (an event's payload). */
export function jsonValue(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw new UsageError(`expected JSON (${(error as Error).message}); quote strings, e.g. '"text"' or '{"id": 1}'`);
  }
}
