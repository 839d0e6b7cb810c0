import type { CheckpointInfo, ChildTaskInfo, EventWaitInfo, RunInfo, TaskDetail } from '../../interfaces/task-detail.interface.js';
import { renderTable } from '../format/table.js';
import { cut, json, oneLine, shortTime, time } from '../format/text.js';

/** `tasks show` for people: the task, then its runs, checkpoints, events and children. */
export function renderTaskDetail(detail: TaskDetail, width: number): string {
  const { task } = detail;
  const field = (label: string, value: string) => cut(`${label.padEnd(10)}${oneLine(value)}`, width);
  // What it waits for and why it failed are read in full: wrapped, not cut (up to 4 lines).
  const wrapped = (label: string, value: string) => wrap(oneLine(value), width - 10, 4).map((line, i) => `${(i === 0 ? label : '').padEnd(10)}${line}`).join('\n');
  const lines = [
    field('Task', task.taskId),
    field('Name', `${task.name} (queue ${task.queue})`),
    field('State', `${task.state}, attempt ${task.attempts}`),
    wrapped('Waiting', task.waitingFor ? `${task.waitingFor.reason}: ${task.waitingFor.message}` : '-'),
    field('Parent', task.parentTaskId ?? '-'),
    field('Created', `${time(task.createdAt)}   updated ${time(task.updatedAt)}`),
    field('Params', json(task.params)),
  ];
  if (Object.keys(task.headers).length > 0) lines.push(field('Headers', json(task.headers)));
  if ('result' in task) lines.push(field('Result', json(task.result)));
  if (task.error) lines.push(wrapped(task.state === 'failed' || task.state === 'cancelled' ? 'Error' : 'Last error', `${task.error.name}: ${task.error.message}`));

  lines.push('', `Runs (${detail.runs.length})`, renderTable([
    { header: '#', value: (r: RunInfo) => String(r.attempt), align: 'right', fixed: true },
    { header: 'STATE', value: (r) => r.state, fixed: true },
    { header: 'WORKER', value: (r) => r.workerId ?? '-' },
    { header: 'STARTED', value: (r) => shortTime(r.startedAt), fixed: true },
    { header: 'FINISHED', value: (r) => shortTime(r.finishedAt), fixed: true },
    { header: 'ERROR', value: (r) => (r.error ? `${r.error.name}: ${r.error.message}` : '') },
  ], detail.runs, width));

  lines.push('', `Steps and checkpoints, in order (${detail.checkpoints.length})`);
  if (detail.checkpoints.length > 0) {
    lines.push(renderTable([
      { header: 'NAME', value: (c: CheckpointInfo) => c.name },
      { header: 'ATT', value: (c) => String(c.attempt), align: 'right', fixed: true },
      { header: 'AT', value: (c) => shortTime(c.createdAt), fixed: true },
      { header: 'VALUE', value: (c) => (c.value === undefined ? '(undefined)' : json(c.value)) },
    ], detail.checkpoints, width));
  }

  const received = detail.checkpoints.filter((c) => c.kind === 'event' || c.kind === 'emit');
  lines.push('', `Events (${detail.eventWaits.length} waiting, ${received.length} done)`);
  for (const w of detail.eventWaits) lines.push(cut(oneLine(`  waits for ${describeWait(w)}`), width));
  for (const c of received) {
    const outcome = c.kind === 'emit' ? 'emitted' : (c.value as { timedOut?: boolean } | null)?.timedOut ? 'timed out' : `received ${json((c.value as { payload?: unknown } | null)?.payload)}`;
    lines.push(cut(oneLine(`  ${c.name}: ${outcome}`), width));
  }

  lines.push('', `Children (${detail.childCount}${detail.childCount > detail.children.length ? `, first ${detail.children.length} shown` : ''})`);
  if (detail.children.length > 0) {
    lines.push(renderTable([
      { header: 'ID', value: (c: ChildTaskInfo) => c.taskId, fixed: true },
      { header: 'STATE', value: (c) => c.state, fixed: true },
      { header: 'NAME', value: (c) => c.name },
      { header: 'QUEUE', value: (c) => c.queue },
    ], detail.children, width));
  }
  return lines.join('\n');
}

/** `text` in lines of at most `width`, broken at spaces where it can be; the last line cut. */
function wrap(text: string, width: number, maxLines: number): string[] {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > width && lines.length < maxLines - 1) {
    const space = rest.lastIndexOf(' ', width);
    const at = space > width / 2 ? space : width;
    lines.push(rest.slice(0, at));
    rest = rest.slice(at).trimStart();
  }
  lines.push(cut(rest, width));
  return lines;
}

function describeWait(w: EventWaitInfo): string {
  const timeout = w.timeoutAt ? `, times out ${time(w.timeoutAt)}` : '';
  const emitted = w.emittedAt ? `, emitted ${time(w.emittedAt)} (resumes at the next claim)` : '';
  return `"${w.eventName}" on queue ${w.queue}${timeout}${emitted}`;
}
