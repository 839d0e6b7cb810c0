import type { Command } from 'commander';
import type { ScheduleInfo } from '../../interfaces/schedule.interface.js';
import type { CliSession } from '../cli.session.js';
import { renderTable } from '../format/table.js';
import { time } from '../format/text.js';

/** `schedules list`. */
export function registerScheduleCommands(program: Command, session: CliSession): void {
  const schedules = program.command('schedules').description('cron schedules');

  schedules.command('list')
    .description('every schedule with its next run')
    .action(async (_options: unknown, command: Command) => {
      session.use(command);
      const client = await session.client();
      const rows = await client.listSchedules();
      session.output(rows, () => (rows.length === 0 ? 'no schedules' : renderTable([
        { header: 'NAME', value: (r: ScheduleInfo) => r.name },
        { header: 'CRON', value: (r) => r.cron },
        { header: 'TASK', value: (r) => r.taskName },
        { header: 'QUEUE', value: (r) => r.queue },
        { header: 'TIMEZONE', value: (r) => r.timezone },
        { header: 'NEXT RUN', value: (r) => time(r.nextRunAt ? new Date(r.nextRunAt) : null), fixed: true },
      ], rows, session.io.width)));
    });
}
