/**
 * The packed package as its users get it: `npm pack`, unpacked into a consumer folder outside
 * the repository, loaded by name from CommonJS (require), from ESM (import), and from
 * TypeScript compiled as CommonJS.
 *
 * The consumer gets no `npm install` (no network, no time): the tarball is unpacked into its
 * node_modules/nestjs-durable, and the peer dependencies (and the @types a TypeScript app
 * installs) are symlinks to this repository's node_modules. Node resolves a symlinked package's
 * own imports from its real path, so the consumer and the package share one copy of each peer,
 * as after an install.
 *
 * The package is compiled here into a folder of its own, with the same tsconfig.build.json as
 * `npm run build`: that script empties the repository's dist/, which other specs (and other
 * people) may be using at the same time.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURES = join(ROOT, 'test', 'packaging', 'fixtures');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/**
 * The peer dependencies, and the @types a TypeScript consumer installs beside them, and the
 * package's own dependencies (which an install brings along).
 */
const LINKED = [
  '@nestjs/common', '@nestjs/core', 'reflect-metadata', 'rxjs', 'typeorm', 'pg', '@types/node', '@types/pg',
  ...Object.keys((JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  }).dependencies ?? {}),
];

/** What the contract says the package root exports (more is fine). */
const CONTRACT_EXPORTS = [
  'DurableModule', 'DurableTask', 'DurableClient', 'durableMigrations', 'createDurableMigrations',
  'DurableError', 'EventTimeoutError', 'NonRetryableError', 'TaskFailedError', 'TaskCancelledError',
  'TaskNotFoundError', 'TimeoutError', 'SerializationError', 'InvalidArgumentError', 'DatabaseUnavailableError',
  'DurableHealthIndicator',
];
const MIGRATION_NAMES = ['DurableCreateTables1764000000001', 'DurableCreateFunctions1764000000002'];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// The children must not inherit jest's NODE_OPTIONS (--experimental-vm-modules).
const childEnv = { ...process.env };
delete childEnv.NODE_OPTIONS;

function run(command: string, args: string[], cwd: string, timeout = 60_000): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(command, args, { cwd, timeout, env: childEnv, maxBuffer: 16 * 1024 * 1024 }, (_error, stdout, stderr) => {
      done({ code: child.exitCode, stdout, stderr });
    });
  });
}

function node(args: string[], cwd: string): Promise<Run> {
  return run(process.execPath, args, cwd);
}

/** The JSON line a fixture printed last; fails with its output if it did not exit 0. */
function report<T>(result: Run): T {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(result.stdout.trim().split('\n').pop()!) as T;
}

/** tsc's diagnostics as `file: TSxxxx` (without position and message text). */
function diagnostics(result: Run): string[] {
  return result.stdout
    .split('\n')
    .map((line) => /^(\S+)\(\d+,\d+\): error (TS\d+)/.exec(line))
    .filter((match) => match !== null)
    .map((match) => `${match[1]}: ${match[2]}`);
}

function tsconfig(module: string, files: string[], options: Record<string, unknown>) {
  return {
    compilerOptions: {
      module, moduleResolution: module === 'node20' ? 'nodenext' : module, target: 'ES2022', strict: true,
      experimentalDecorators: true, emitDecoratorMetadata: true, types: ['node'], ...options,
    },
    files,
  };
}

describe('the packed package in consumer projects', () => {
  let work: string;
  let consumer: string;
  let packed: { filename: string; files: { path: string }[] };
  let compiles: Record<'nodenext' | 'node20' | 'node16', Promise<Run>>;
  let db: TestDatabase;
  let sql: pg.Pool;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nestjs-durable-consumers-'));
    const stage = join(work, 'package');
    mkdirSync(stage);
    for (const file of ['package.json', 'README.md']) copyFileSync(join(ROOT, file), join(stage, file));
    const build = await run(process.execPath, [TSC, '-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist')], ROOT, 120_000);
    if (build.code !== 0) throw new Error(`the build failed:\n${build.stdout}\n${build.stderr}`);
    const pack = await run('npm', ['pack', '--json', '--pack-destination', work], stage);
    if (pack.code !== 0) throw new Error(`npm pack failed:\n${pack.stdout}\n${pack.stderr}`);
    [packed] = JSON.parse(pack.stdout) as (typeof packed)[];

    consumer = join(work, 'consumer');
    const installed = join(consumer, 'node_modules', 'nestjs-durable');
    mkdirSync(installed, { recursive: true });
    const untar = await run('tar', ['-xzf', join(work, packed.filename), '-C', installed, '--strip-components=1'], work);
    if (untar.code !== 0) throw new Error(`tar failed:\n${untar.stderr}`);
    for (const name of LINKED) {
      mkdirSync(dirname(join(consumer, 'node_modules', name)), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules', name), join(consumer, 'node_modules', name), 'dir');
    }
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'commonjs' }));
    for (const file of ['require.cjs', 'import.mjs', 'same-classes.cjs', 'same-classes.mjs']) {
      copyFileSync(join(FIXTURES, file), join(consumer, file));
    }
    mkdirSync(join(consumer, 'src'));
    for (const file of ['main.ts', 'direct-node16.ts', 'dynamic-node16.ts']) {
      copyFileSync(join(FIXTURES, 'ts', file), join(consumer, 'src', file));
    }
    const configs = {
      // The strictest: the package's own .d.ts files are checked too (skipLibCheck off); emits out/main.js.
      nodenext: tsconfig('nodenext', ['src/main.ts'], { rootDir: 'src', outDir: 'out', skipLibCheck: false }),
      node20: tsconfig('node20', ['src/main.ts'], { noEmit: true, skipLibCheck: true }),
      node16: tsconfig('node16', ['src/direct-node16.ts', 'src/dynamic-node16.ts'], { noEmit: true, skipLibCheck: true }),
    };
    for (const [name, config] of Object.entries(configs)) {
      writeFileSync(join(consumer, `tsconfig.${name}.json`), JSON.stringify(config, null, 2));
    }
    // Started together, awaited by the tests that need them.
    compiles = {
      nodenext: run(process.execPath, [TSC, '-p', 'tsconfig.nodenext.json'], consumer, 120_000),
      node20: run(process.execPath, [TSC, '-p', 'tsconfig.node20.json'], consumer, 120_000),
      node16: run(process.execPath, [TSC, '-p', 'tsconfig.node16.json'], consumer, 120_000),
    };

    db = await createTestDatabase();
    sql = sqlPool(db.url);
  }, 180_000);

  afterAll(async () => {
    if (compiles) await Promise.all(Object.values(compiles));
    await sql?.end();
    await db?.drop();
    if (work && !process.env.DURABLE_KEEP_PACKAGING_DIR) rmSync(work, { recursive: true, force: true });
  }, 130_000);

  it('npm pack ships the build, package.json and README.md, and nothing else', () => {
    const paths = packed.files.map((file) => file.path);
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/lib/index.js', 'dist/lib/index.d.ts']));
    expect(paths.filter((path) => !/^dist\/lib\/.+\.(js|d\.ts|js\.map)$/.test(path) && path !== 'package.json' && path !== 'README.md')).toEqual([]);
  });

  it('a .cjs file require()s the package by name (require(esm), Node 20.19+), and its ./testing and ./dashboard entries', async () => {
    const found = report<{
      resolved: string; requireModule: boolean; exports: string[]; types: Record<string, string>; migrationClasses: string[]; testingExports: string[];
      dashboardExports: string[];
    }>(await node(['require.cjs'], consumer));
    expect(realpathSync(found.resolved)).toBe(realpathSync(join(consumer, 'node_modules', 'nestjs-durable', 'dist', 'lib', 'index.js')));
    expect(found.requireModule).toBe(true);
    expect(found.exports).toEqual(expect.arrayContaining(CONTRACT_EXPORTS));
    expect(found.types).toEqual({ DurableModule: 'function', DurableClient: 'function', createDurableMigrations: 'function' });
    expect(found.migrationClasses.slice(0, 2)).toEqual(MIGRATION_NAMES);
    expect(found.testingExports.length).toBeGreaterThan(0);
    expect(found.dashboardExports).toEqual(['DurableDashboardModule']);
  });

  it('a .mjs file imports the package by name, and its ./testing and ./dashboard entries', async () => {
    const found = report<{ resolved: string; exports: string[]; types: Record<string, string>; migrationClasses: string[]; testingExports: string[]; dashboardExports: string[] }>(
      await node(['import.mjs'], consumer),
    );
    expect(realpathSync(fileURLToPath(found.resolved))).toBe(realpathSync(join(consumer, 'node_modules', 'nestjs-durable', 'dist', 'lib', 'index.js')));
    expect(found.exports).toEqual(expect.arrayContaining(CONTRACT_EXPORTS));
    expect(found.types).toEqual({ DurableModule: 'function', DurableClient: 'function', createDurableMigrations: 'function' });
    expect(found.migrationClasses.slice(0, 2)).toEqual(MIGRATION_NAMES);
    expect(found.testingExports.length).toBeGreaterThan(0);
    expect(found.dashboardExports).toEqual(['DurableDashboardModule']);
  });

  it('require and import in one process give the same module: same classes, instanceof across both', async () => {
    const same = { sameNamespace: true, DurableClient: true, DurableModule: true, durableMigrations: true, errorInstanceof: true };
    expect(report(await node(['same-classes.cjs'], consumer))).toEqual(same);
    expect(report(await node(['same-classes.mjs'], consumer))).toEqual(same);
  });

  it('TypeScript compiled as CommonJS (module nodenext) type-checks, and runs migrations, Nest and a task', async () => {
    const compiled = await compiles.nodenext;
    expect({ code: compiled.code, output: compiled.stdout + compiled.stderr }).toEqual({ code: 0, output: '' });

    const result = report<{ commonjs: boolean; migrations: string[]; taskId: string; result: unknown; notFound: boolean }>(
      await node(['out/main.js', db.url], consumer),
    );
    expect(result).toMatchObject({ commonjs: true, result: { doubled: 42, attempt: 1 }, notFound: true });
    expect(result.migrations.slice(0, 2)).toEqual(MIGRATION_NAMES);
    const { rows } = await sql.query(`select name, state from cjs_consumer.tasks where id = $1`, [result.taskId]);
    expect(rows).toEqual([{ name: 'cjs-task', state: 'completed' }]);
    const recorded = await sql.query(`select name from public.cjs_app_migrations order by id`);
    expect(recorded.rows.map((row) => row.name)).toEqual(result.migrations);
  }, 130_000);

  it('TypeScript compiled as CommonJS with module node20 type-checks', async () => {
    const compiled = await compiles.node20;
    expect({ code: compiled.code, output: compiled.stdout + compiled.stderr }).toEqual({ code: 0, output: '' });
  }, 130_000);

  it('with module node16 (no require(esm) in TypeScript\'s model) only a static import fails, with TS1479; import() type-checks', async () => {
    const compiled = await compiles.node16;
    expect(diagnostics(compiled)).toEqual(['src/direct-node16.ts: TS1479']);
    expect(compiled.stdout).toMatch(/import\("nestjs-durable"\)/);
  }, 130_000);
});
