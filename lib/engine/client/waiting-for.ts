import type { TaskSnapshot, WaitingFor, WaitingReason } from '../../interfaces/task-snapshot.interface.js';
import type { Row } from '../db/store.js';

/** Children named in a message, at most (`childTaskIds` has them all). */
const NAMED_CHILDREN = 3;

/**
 * `TaskSnapshot.waitingFor` from a row of a statement built on `tasksWithWaiting` (the w_*
 * columns: the live run's wait, read in the same statement as the task). The order of the
 * checks is the order of precedence: a wait with a time in the future explains itself; a task
 * due now waits for a worker, a limit, or a free slot.
 */
export function toWaitingFor(row: Row, task: Pick<TaskSnapshot, 'name' | 'state' | 'queue' | 'attempts' | 'error'>): WaitingFor | null {
  if ((task.state !== 'pending' && task.state !== 'sleeping') || row.w_later === null || row.w_later === undefined) return null;
  const until = (row.w_until as Date | null) ?? undefined;
  const queue = JSON.stringify(task.queue);
  // Said beside a wait that ends later, so a wake-up nobody would claim is seen before it happens.
  const unpolled = row.w_polled ? '' : `; no worker polls queue ${queue} now`;
  if (row.w_later) {
    if (row.w_join) {
      const children = (row.w_children as string[] | null) ?? [];
      const deadline = (row.w_join_deadline as Date | null) ?? undefined;
      const named = children.slice(0, NAMED_CHILDREN).join(', ') + (children.length > NAMED_CHILDREN ? ', ...' : '');
      return wait('children', `waiting for ${children.length} child task(s) to finish: ${named}${deadline ? `, until ${iso(deadline)}` : ''}${unpolled}`,
        { until: deadline, childTaskIds: children });
    }
    if (row.w_event !== null) {
      const eventName = row.w_event as string;
      return wait('event', `waiting for event ${JSON.stringify(eventName)} on queue ${queue}${until ? `, until ${iso(until)}` : ''}${unpolled}`,
        { until, eventName });
    }
    if (task.state === 'sleeping') return wait('sleep', `sleeping until ${iso(until)}${unpolled}`, { until });
    if (task.attempts > 1 && task.error) {
      const failure = `${task.error.name}: ${task.error.message}`;
      return wait('retry', `attempt ${task.attempts} starts at ${iso(until)} after the retry delay (the last attempt failed: ${failure})${unpolled}`, { until });
    }
    return wait('delayed', `not to start before ${iso(until)}${unpolled}`, { until });
  }
  if (!row.w_polled) {
    return wait('noWorker', `due now, but no worker has polled queue ${queue} recently: start a worker with this queue in its queues`);
  }
  // From statements.ts's withWaiting: a due task a flow limit holds back (w_held_by), and when a rate window reopens.
  if (row.w_held_by === 'concurrency') {
    return wait('concurrency', `held back by the concurrency limit of task ${JSON.stringify(task.name)}: as many are running as it allows`);
  }
  if (row.w_held_by === 'rateLimit') {
    const heldUntil = (row.w_held_until as Date | null) ?? undefined;
    return wait('rateLimit', `held back by the rate limit${heldUntil ? ` until ${iso(heldUntil)}` : ''}`, { until: heldUntil });
  }
  return wait('queued', `due now, waiting for a free worker slot on queue ${queue}`);
}

function wait(reason: WaitingReason, message: string, extra: Omit<WaitingFor, 'reason' | 'message'> = {}): WaitingFor {
  const waitingFor: WaitingFor = { reason, message };
  if (extra.until) waitingFor.until = extra.until;
  if (extra.eventName !== undefined) waitingFor.eventName = extra.eventName;
  if (extra.childTaskIds) waitingFor.childTaskIds = extra.childTaskIds;
  return waitingFor;
}

function iso(date: Date | undefined): string {
  return date ? date.toISOString() : 'an unknown time';
}
