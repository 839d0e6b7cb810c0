import type { Command } from 'commander';
import { CliError } from '../cli.error.js';
import type { CliSession } from '../cli.session.js';
import { renderTable } from '../format/table.js';
import { time } from '../format/text.js';

/**
 * The contract's `ScheduleInfo` and `DurableClient.listSchedules` (Part 2, "Schedules"), which
 * come with schedules: named here so that this command builds before they exist. Once the
 * client has them, this type is the exported `ScheduleInfo`.
 */
export interface ScheduleRow {
  name: string;
  cron: string;
  taskName: string;
  queue: string;
  timezone: string;
  params: unknown;
  nextRunAt: Date | null;
}
interface ScheduleReader {
  listSchedules?: () => Promise<ScheduleRow[]>;
}

/** `schedules list`. */
export function registerScheduleCommands(program: Command, session: CliSession): void {
  const schedules = program.command('schedules').description('cron schedules');

  schedules.command('list')
    .description('every schedule with its next run')
    .action(async (_options: unknown, command: Command) => {
      session.use(command);
      const client = (await session.client()) as ScheduleReader;
      if (typeof client.listSchedules !== 'function') {
        throw new CliError(1, '`schedules list` is not available in this version of nestjs-durable (its DurableClient has no listSchedules()); upgrade the package');
      }
      const rows = await client.listSchedules();
      session.output(rows, () => (rows.length === 0 ? 'no schedules' : renderTable([
        { header: 'NAME', value: (r: ScheduleRow) => r.name },
        { header: 'CRON', value: (r) => r.cron },
        { header: 'TASK', value: (r) => r.taskName },
        { header: 'QUEUE', value: (r) => r.queue },
        { header: 'TIMEZONE', value: (r) => r.timezone },
        { header: 'NEXT RUN', value: (r) => time(r.nextRunAt ? new Date(r.nextRunAt) : null), fixed: true },
      ], rows, session.io.width)));
    });
}
