import type { Command } from 'commander';
import type { QueueStats } from '../../interfaces/task-snapshot.interface.js';
import type { CliSession } from '../cli.session.js';
import { renderTable } from '../format/table.js';
import { duration } from '../format/text.js';

/** `queues stats`. */
export function registerQueueCommands(program: Command, session: CliSession): void {
  const queues = program.command('queues').description('queues and their counts');

  queues.command('stats')
    .description('tasks per state in each queue, and the age of the oldest pending one')
    .option('--queue <name>', 'only this queue')
    .action(async (_options: unknown, command: Command) => {
      const o = session.use<{ queue?: string }>(command);
      const client = await session.client();
      const rows = await client.stats(o.queue === undefined ? {} : { queue: o.queue });
      session.output(rows, () => (rows.length === 0 ? 'no queues' : renderTable([
        { header: 'QUEUE', value: (r: QueueStats) => r.queue },
        { header: 'PENDING', value: (r) => String(r.pending), align: 'right', fixed: true },
        { header: 'RUNNING', value: (r) => String(r.running), align: 'right', fixed: true },
        { header: 'SLEEPING', value: (r) => String(r.sleeping), align: 'right', fixed: true },
        { header: 'DONE', value: (r) => String(r.completed), align: 'right', fixed: true },
        { header: 'FAILED', value: (r) => String(r.failed), align: 'right', fixed: true },
        { header: 'CANCELLED', value: (r) => String(r.cancelled), align: 'right', fixed: true },
        { header: 'OLDEST PENDING', value: (r) => duration(r.oldestPendingAgeMs), align: 'right', fixed: true },
      ], rows, session.io.width)));
    });
}
