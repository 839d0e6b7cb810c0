import type { Command } from 'commander';
import { migrateSchema } from '../../engine/client/migrate-schema.js';
import { durableMigrations } from '../../engine/sql/migrations/index.js';
import { duration, positiveInteger } from '../cli.arguments.js';
import type { CliSession } from '../cli.session.js';

/** `migrate` and `cleanup`. */
export function registerMaintenanceCommands(program: Command, session: CliSession): void {
  program.command('migrate')
    .description("apply durable's migrations that the schema lacks (what migrationsRun does at startup)")
    .action(async (_options: unknown, command: Command) => {
      session.use(command);
      const applied = await session.connect(migrateSchema);
      const { schema } = session.options;
      session.output({ schema, applied, total: durableMigrations.length }, () => (applied.length === 0
        ? `schema "${schema}" is up to date (${durableMigrations.length} migrations)`
        : `applied ${applied.length} migration(s) to schema "${schema}":\n${applied.map((name) => `  ${name}`).join('\n')}`));
    });

  program.command('cleanup')
    .description('delete tasks terminal for at least --older-than (with their runs, checkpoints and waits), and events nothing needs')
    .requiredOption('--older-than <duration>', 'e.g. 7d, 12h, 30m', duration)
    .option('--queue <name>', 'only this queue (default: every queue)')
    .option('--limit <n>', 'at most this many tasks (and events)', positiveInteger, 1000)
    .action(async (_options: unknown, command: Command) => {
      const o = session.use<{ olderThan: number; queue?: string; limit: number }>(command);
      const deleted = await (await session.client()).cleanup({ olderThanMs: o.olderThan, queue: o.queue, limit: o.limit });
      session.output({ deleted }, () => `deleted ${deleted} task(s)`);
    });
}
