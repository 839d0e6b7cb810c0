import type { Command } from 'commander';
import type { TaskSnapshot, TaskState } from '../../interfaces/task-snapshot.interface.js';
import { positiveInteger, taskId, taskState } from '../cli.arguments.js';
import { CliError } from '../cli.error.js';
import type { CliSession } from '../cli.session.js';
import { renderTable } from '../format/table.js';
import { renderTaskDetail } from './task-detail.view.js';

interface ListOptions {
  queue?: string;
  state?: TaskState;
  name?: string;
  parent?: string;
  limit: number;
  cursor?: string;
}

/** `tasks list|show|retry|cancel`. */
export function registerTaskCommands(program: Command, session: CliSession): void {
  const tasks = program.command('tasks').description('list, inspect, retry and cancel tasks');

  tasks.command('list')
    .description('tasks newest first, with why each unfinished one waits')
    .option('--queue <name>', 'only this queue')
    .option('--state <state>', 'only this state (pending, running, sleeping, completed, failed, cancelled)', taskState)
    .option('--name <task>', 'only tasks of this name')
    .option('--parent <id>', 'only the children of this task', taskId)
    .option('--limit <n>', 'at most this many (up to 1000)', positiveInteger, 20)
    .option('--cursor <id>', 'the page after this task (the last id of the previous page)', taskId)
    .action(async (_options: unknown, command: Command) => {
      const o = session.use<ListOptions>(command);
      const client = await session.client();
      const page = await client.listTasks({
        queue: o.queue, state: o.state, name: o.name, parentTaskId: o.parent, limit: Math.min(o.limit, 1000), cursor: o.cursor,
      });
      session.output(page, () => {
        if (page.length === 0) return 'no tasks';
        const table = renderTable([
          { header: 'ID', value: (t: TaskSnapshot) => t.taskId, fixed: true },
          { header: 'STATE', value: (t) => t.state, fixed: true },
          { header: 'NAME', value: (t) => t.name },
          { header: 'QUEUE', value: (t) => t.queue },
          { header: 'DETAIL', value: (t) => t.waitingFor?.reason ?? (t.error ? `${t.error.name}: ${t.error.message}` : '') },
        ], page, session.io.width);
        const more = page.length === Math.min(o.limit, 1000) ? `\nmore: --cursor ${page[page.length - 1].taskId}` : '';
        return table + more;
      });
    });

  tasks.command('show')
    .description('a task with its runs, steps and checkpoints in order, events, children, and what it waits for')
    .argument('<id>', 'the task id', taskId)
    .option('--children <n>', 'list at most this many children', positiveInteger, 20)
    .action(async (id: string, _options: unknown, command: Command) => {
      const o = session.use<{ children: number }>(command);
      const detail = await (await session.client()).inspectTask(id, { childLimit: o.children });
      if (!detail) throw new CliError(1, `no task with id ${id} (list tasks with \`nestjs-durable tasks list\`)`);
      session.output(detail, () => renderTaskDetail(detail, session.io.width));
    });

  tasks.command('retry')
    .description('give a failed or cancelled task a new attempt (its checkpoints are kept)')
    .argument('<id>', 'the task id', taskId)
    .action(async (id: string, _options: unknown, command: Command) => {
      session.use(command);
      const client = await session.client();
      const before = await client.getTask(id);
      if (!before) throw new CliError(1, `no task with id ${id} (list tasks with \`nestjs-durable tasks list\`)`);
      if (before.state !== 'failed' && before.state !== 'cancelled') {
        throw new CliError(1, `task ${id} is ${before.state}: only failed or cancelled tasks can be retried`);
      }
      await client.retry(id).catch((error: Error) => {
        // Its state changed in between: report it as a refusal.
        throw error.name === 'InvalidArgumentError' ? new CliError(1, error.message) : error;
      });
      const after = (await client.getTask(id))!;
      session.output(after, () => `task ${id} retried: attempt ${after.attempts} is ${after.state}`);
    });

  tasks.command('cancel')
    .description('cancel a pending, running or sleeping task (and its unfinished children)')
    .argument('<id>', 'the task id', taskId)
    .action(async (id: string, _options: unknown, command: Command) => {
      session.use(command);
      const client = await session.client();
      const before = await client.getTask(id);
      if (!before) throw new CliError(1, `no task with id ${id} (list tasks with \`nestjs-durable tasks list\`)`);
      if (before.state === 'completed' || before.state === 'failed') {
        throw new CliError(1, `task ${id} is ${before.state}: only pending, running or sleeping tasks can be cancelled`);
      }
      await client.cancel(id);
      const after = (await client.getTask(id))!;
      if (after.state !== 'cancelled') throw new CliError(1, `task ${id} ${after.state} before it could be cancelled`);
      session.output(after, () => (before.state === 'cancelled' ? `task ${id} was cancelled already` : `task ${id} cancelled`));
    });
}
