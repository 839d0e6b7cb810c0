/**
 * A refusal the CLI reports itself, with the exit code scripts rely on: 1 (not found, refused,
 * unavailable) or 2 (bad usage). The message says what to fix.
 */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(readonly exitCode: 1 | 2, message: string) {
    super(message);
  }
}
