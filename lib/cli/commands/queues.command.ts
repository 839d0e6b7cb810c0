import type { Command } from 'commander';
import { CliError } from '../cli.error.js';
import type { CliSession } from '../cli.session.js';
import { renderTable } from '../format/table.js';
import { duration } from '../format/text.js';

/**
 * The contract's `QueueStats` and `DurableClient.stats` (Part 2, "Operations"), which come with
 * the client's stats: named here so that this command builds before they exist. Once the
 * client has them, this type is the exported `QueueStats`.
 */
export interface QueueStatsRow {
  queue: string;
  pending: number;
  running: number;
  sleeping: number;
  completed: number;
  failed: number;
  cancelled: number;
  oldestPendingAgeMs: number | null;
}
interface StatsReader {
  stats?: (options?: { queue?: string }) => Promise<QueueStatsRow[]>;
}

/** `queues stats`. */
export function registerQueueCommands(program: Command, session: CliSession): void {
  const queues = program.command('queues').description('queues and their counts');

  queues.command('stats')
    .description('tasks per state in each queue, and the age of the oldest pending one')
    .option('--queue <name>', 'only this queue')
    .action(async (_options: unknown, command: Command) => {
      const o = session.use<{ queue?: string }>(command);
      const client = (await session.client()) as StatsReader;
      if (typeof client.stats !== 'function') {
        throw new CliError(1, '`queues stats` is not available in this version of nestjs-durable (its DurableClient has no stats()); upgrade the package');
      }
      const rows = await client.stats(o.queue === undefined ? {} : { queue: o.queue });
      session.output(rows, () => (rows.length === 0 ? 'no queues' : renderTable([
        { header: 'QUEUE', value: (r: QueueStatsRow) => r.queue },
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
