/** Runs a script of test/fixtures/ in a real process (through tsx), for what Jest cannot show. */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface FixtureRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `test/fixtures/<fixture>` with `args`, killed after `timeoutMs`; resolves once it has
 * exited. `onStdout` sees its output as it comes.
 */
export function runFixture(fixture: string, args: string[], timeoutMs: number, onStdout?: (chunk: string) => void): Promise<FixtureRun> {
  return new Promise((resolve) => {
    const child = execFile(
      join(ROOT, 'node_modules', '.bin', 'tsx'),
      [join(ROOT, 'test', 'fixtures', fixture), ...args],
      { cwd: ROOT, timeout: timeoutMs },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, stdout, stderr }),
    );
    if (onStdout) child.stdout!.on('data', (chunk: Buffer | string) => onStdout(chunk.toString()));
  });
}
