import { Command, CommanderError, Option } from 'commander';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { TaskNotFoundError } from '../errors/task-not-found.error.js';
import { CliError } from './cli.error.js';
import { CliSession, type CliIo } from './cli.session.js';
import { registerEventCommands } from './commands/events.command.js';
import { registerMaintenanceCommands } from './commands/maintenance.command.js';
import { registerQueueCommands } from './commands/queues.command.js';
import { registerScheduleCommands } from './commands/schedules.command.js';
import { registerTaskCommands } from './commands/tasks.command.js';

/** Commander's refusals that are the user's to fix; its help and version are not errors. */
const NOT_ERRORS = new Set(['commander.helpDisplayed', 'commander.version']);

/** `npx nestjs-durable`: the commands, global options and help. */
export function buildProgram(session: CliSession, version: string): Command {
  const program = new Command('nestjs-durable')
    .description('Inspect and operate nestjs-durable tasks in PostgreSQL.')
    .version(version)
    .addOption(new Option('--database-url <url>', 'PostgreSQL URL (postgres://user:password@host:5432/database)').env('DURABLE_DATABASE_URL'))
    .addOption(new Option('--schema <name>', "the schema holding durable's tables").env('DURABLE_SCHEMA').default('durable'))
    .option('--json', 'print one JSON document on stdout, for scripts', false)
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true, helpWidth: Math.min(session.io.width, 100) })
    .configureOutput({ writeOut: (text) => session.io.out(text), writeErr: (text) => session.io.err(text) });
  registerTaskCommands(program, session);
  registerEventCommands(program, session);
  registerQueueCommands(program, session);
  registerScheduleCommands(program, session);
  registerMaintenanceCommands(program, session);
  return program;
}

/** Runs the CLI on `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[], io: CliIo, version: string): Promise<number> {
  const session = new CliSession(io);
  const program = buildProgram(session, version);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    // Commander printed its own message (and the hint to --help) already.
    if (error instanceof CommanderError) return NOT_ERRORS.has(error.code) ? 0 : 2;
    const code = error instanceof CliError ? error.exitCode : error instanceof InvalidArgumentError ? 2 : 1;
    // A CliError's message is the CLI's own (its quoted parts were scrubbed where they were made).
    io.err(`nestjs-durable: ${error instanceof CliError ? error.message : session.scrub(describe(error, session.options.schema))}\n`);
    return code;
  } finally {
    await session.close();
  }
}

function describe(error: unknown, schema: string): string {
  if (error instanceof TaskNotFoundError) return `${error.message} (list tasks with \`nestjs-durable tasks list\`)`;
  const message = error instanceof Error ? error.message : String(error);
  if (/(relation|function|schema) "?[\w.]+"? does not exist|function [\w."]+\(.*\) does not exist/.test(message)) {
    return `${message}\nThe schema "${schema}" has no durable tables, or older ones: run \`nestjs-durable migrate\` (or check --schema).`;
  }
  return message;
}
