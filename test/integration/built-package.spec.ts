import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], timeout: number): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(command, args, { cwd: ROOT, timeout, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) => {
      done({ code: child.exitCode, stdout, stderr });
    });
  });
}

/** What the contract says the package root exports (more is fine). */
const CONTRACT_EXPORTS = [
  'DurableModule', 'DurableTask', 'DurableClient', 'durableMigrations',
  'DurableError', 'EventTimeoutError', 'NonRetryableError', 'TaskFailedError', 'TaskCancelledError',
  'TaskNotFoundError', 'TimeoutError', 'SerializationError', 'InvalidArgumentError', 'DatabaseUnavailableError',
];

describe('the built package', () => {
  let build: Run;
  let db: TestDatabase;
  let sql: pg.Pool;

  beforeAll(async () => {
    build = await run('npm', ['run', 'build'], 120_000);
    db = await createTestDatabase();
    sql = sqlPool(db.url);
  }, 130_000);
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  it('npm run build succeeds', () => {
    // npm may print notices on stderr; the output is shown only when the build failed.
    expect({ code: build.code, output: build.code === 0 ? '' : `${build.stdout}\n${build.stderr}` }).toEqual({ code: 0, output: '' });
  });

  it('package.json exports["."] points at files that exist', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      type: string; main: string; types: string; exports: Record<string, { default: string; types: string }>;
    };
    expect(pkg.type).toBe('module');
    const entry = pkg.exports['.'];
    expect(entry.default).toMatch(/\.js$/);
    expect(entry.types).toMatch(/\.d\.ts$/);
    for (const file of [entry.default, entry.types, pkg.main, pkg.types]) {
      expect({ file, exists: existsSync(resolve(ROOT, file)) }).toEqual({ file, exists: true });
    }
    // The migrations the entry re-exports were built too.
    expect(readFileSync(resolve(ROOT, entry.default), 'utf8')).toMatch(/migrations\/index\.js/);
  });

  it('resolves by package name to an ESM module with the contract\'s exports', async () => {
    // Self-reference: `import('nestjs-durable')` from inside the package goes through exports["."].
    const script = `const m = await import('nestjs-durable'); process.stdout.write(JSON.stringify(Object.keys(m).sort()));`;
    const result = await run(process.execPath, ['--input-type=module', '-e', script], 30_000);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const names = JSON.parse(result.stdout) as string[];
    expect(names).toEqual(expect.arrayContaining(CONTRACT_EXPORTS));
  });

  it('works from plain JavaScript with the decorator applied as a function', async () => {
    const result = await run(process.execPath, [join(ROOT, 'test', 'fixtures', 'module-built-package.mjs'), db.url], 60_000);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as { taskId: string; result: unknown; resultByName: unknown };
    expect(report.result).toEqual({ doubled: 42, attempt: 1, taskName: 'js-task' });
    expect(report.resultByName).toEqual({ doubled: 10, attempt: 1, taskName: 'js-task' });
    const { rows } = await sql.query(
      `select t.name, t.state, t.result, c.name as checkpoint, c.value from durable.tasks t
       join durable.checkpoints c on c.task_id = t.id where t.id = $1`,
      [report.taskId],
    );
    expect(rows).toEqual([{ name: 'js-task', state: 'completed', result: report.result, checkpoint: 'step:double', value: 42 }]);
  }, 70_000);
});
