import type { Command } from 'commander';
import { jsonValue } from '../cli.arguments.js';
import type { CliSession } from '../cli.session.js';

/** `events emit`. */
export function registerEventCommands(program: Command, session: CliSession): void {
  const events = program.command('events').description('emit events');

  events.command('emit')
    .description('emit an event: every task waiting on it wakes; the first emit of a name on a queue wins')
    .argument('<name>', 'the event name')
    .argument('[payload]', 'its payload as JSON (default null)', jsonValue)
    .option('--queue <name>', 'the queue of the event', 'default')
    .action(async (name: string, payload: unknown, _options: unknown, command: Command) => {
      const o = session.use<{ queue: string }>(command);
      const client = await session.client();
      await client.emitEvent(name, payload ?? null, { queue: o.queue });
      session.output({ queue: o.queue, eventName: name, payload: payload ?? null },
        () => `event ${JSON.stringify(name)} emitted on queue ${JSON.stringify(o.queue)} (if it had been emitted before, the first payload stays)`);
    });
}
