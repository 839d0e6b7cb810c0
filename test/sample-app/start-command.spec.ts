/**
 * The README's `npm start`, for real: a child process with no DURABLE_DATABASE_URL builds the
 * library and the app, starts an embedded PostgreSQL, and serves HTTP; Ctrl-C (SIGINT to its
 * process group, as a terminal sends it) ends it with exit code 0 and leaves no PostgreSQL
 * behind; a second start finds the same data.
 *
 * It runs in a copy of the working tree (sources, config and a node_modules of links to ours),
 * because `npm start` rebuilds dist/ with `rm -rf dist`, which would race the built-package
 * spec that runs the built package at the same time.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../devkit/index.js';
import { eventually } from '../helpers/durable-app.js';
import { http } from './http.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ORDER = { customerEmail: 'ada@example.com', items: [{ sku: 'BOOK-1', quantity: 1, unitPriceCents: 900 }] };

interface Started {
  child: ChildProcess;
  output: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A copy of the repository in which `npm start` can build without touching ours. */
function copyRepository(target: string): void {
  for (const file of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
    cpSync(join(ROOT, file), join(target, file));
  }
  for (const dir of ['lib']) cpSync(join(ROOT, dir), join(target, dir), { recursive: true });
  mkdirSync(join(target, 'sample-app'));
  for (const entry of ['package.json', 'tsconfig.json', 'src']) {
    cpSync(join(ROOT, 'sample-app', entry), join(target, 'sample-app', entry), { recursive: true });
  }
  // Installed packages are shared; links to the workspace itself (nestjs-durable -> ..) stay relative.
  mkdirSync(join(target, 'node_modules'));
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    const source = join(ROOT, 'node_modules', entry);
    let link: string | undefined;
    try {
      link = readlinkSync(source);
    } catch {
      link = undefined; // not a link
    }
    const isWorkspaceLink = link !== undefined && !resolve(dirname(source), link).startsWith(join(ROOT, 'node_modules'));
    symlinkSync(isWorkspaceLink ? link! : source, join(target, 'node_modules', entry));
  }
}

/** Pids of processes whose command line mentions `text` (our unique data folder). */
function processesMentioning(text: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => line.includes(text))
    .map((line) => Number(line.trim().split(/\s+/)[0]))
    .filter((pid) => pid !== process.pid);
}

describe('npm start (the README quick start)', () => {
  let work: string;
  let dataDir: string;
  let port: number;
  let env: NodeJS.ProcessEnv;
  const started: Started[] = [];

  function start(command: string, args: string[]): Started {
    // detached: a process group of its own, so SIGINT can go to the group like a terminal's Ctrl-C.
    const child = spawn(command, args, { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
      child.once('exit', (code, signal) => done({ code, signal }));
    });
    const run = { child, output: () => output, exit };
    started.push(run);
    return run;
  }

  async function untilListening(run: Started, timeoutMs: number): Promise<void> {
    const exited = run.exit.then(({ code, signal }) => {
      throw new Error(`the app exited (${signal ?? code}) before listening:\n${run.output()}`);
    });
    const listening = eventually(() => run.output().includes(`Listening on http://localhost:${port}`), timeoutMs, `the app to listen:\n${run.output()}`);
    await Promise.race([listening, exited]);
    exited.catch(() => undefined);
  }

  async function interrupt(run: Started): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
    const since = Date.now();
    process.kill(-run.child.pid!, 'SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no exit within 15 s of SIGINT:\n${run.output()}`)), 15_000);
    });
    try {
      return { ...(await Promise.race([run.exit, timeout])), ms: Date.now() - since };
    } finally {
      clearTimeout(timer);
    }
  }

  const api = (method: string, path: string, body?: unknown) => http(`http://127.0.0.1:${port}`, method, path, body);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'durable-sample-start-'));
    // As root the embedded PostgreSQL runs as `postgres`, which must reach the data folder.
    chmodSync(work, 0o755);
    copyRepository(work);
    dataDir = join(work, 'sample-data');
    port = await freePort();
    env = { ...process.env, PORT: String(port), SAMPLE_DATA_DIR: dataDir, ORDER_CONFIRM_DELAY_MS: '200', NO_COLOR: '1' };
    // Nothing of the test run leaks in: no database URL, no jest/npm settings.
    for (const name of Object.keys(env)) {
      if (name === 'DURABLE_DATABASE_URL' || name === 'NODE_OPTIONS' || name.startsWith('npm_') || name.startsWith('DURABLE_TEST_')) delete env[name];
    }
  });

  afterAll(() => {
    for (const run of started) {
      if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL');
    }
    for (const pid of processesMentioning(dataDir ?? '\0')) process.kill(pid, 'SIGKILL');
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let packedOrder: string;
  let waitingOrder: string;

  it('builds, starts an embedded PostgreSQL and serves orders; Ctrl-C exits 0 and stops PostgreSQL', async () => {
    const run = start('npm', ['start']);
    await untilListening(run, 240_000);
    const password = readFileSync(join(dataDir, 'password'), 'utf8').trim();
    expect(run.output()).toMatch(new RegExp(`Database: postgres://postgres:\\*{5}@127\\.0\\.0\\.1:\\d+/postgres \\(embedded, data in ${dataDir}\\)`));
    expect(run.output()).toContain('(first start)');
    expect(run.output()).not.toContain(password);
    expect(existsSync(join(work, 'dist', 'lib', 'index.js'))).toBe(true);

    const created = await api('POST', '/orders', ORDER);
    expect(created.status).toBe(202);
    packedOrder = created.body.id;
    expect((await api('POST', `/orders/${packedOrder}/packed`)).status).toBe(202);
    await eventually(async () => (await api('GET', `/orders/${packedOrder}`)).body.state === 'completed', 30_000, 'the packed order to complete');

    waitingOrder = (await api('POST', '/orders', ORDER)).body.id;
    // Sleeping with its line picked: past its join (the child's completion wakes it at once), waiting for packing.
    await eventually(async () => {
      const { body } = await api('GET', `/orders/${waitingOrder}`);
      return body.state === 'sleeping' && body.lines.length === 1 && body.lines[0].state === 'completed';
    }, 30_000, 'the second order to wait for packing');

    const exit = await interrupt(run);
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(exit.ms).toBeLessThan(10_000);
    expect(run.output()).toContain('Shutting down');
    await eventually(() => processesMentioning(dataDir).length === 0, 15_000, 'PostgreSQL to stop');
  }, 300_000);

  it('a second start reuses the data: the waiting order finishes without repeating its steps', async () => {
    expect(packedOrder && waitingOrder).toBeTruthy();
    // What `npm start` execs once it has built (the build was checked above).
    const run = start(process.execPath, ['sample-app/dist/main.js']);
    await untilListening(run, 60_000);
    expect(run.output()).not.toContain('(first start)');

    expect((await api('GET', `/orders/${packedOrder}`)).body).toMatchObject({ state: 'completed', result: { status: 'confirmed' } });
    const waiting = await api('GET', `/orders/${waitingOrder}`);
    expect(waiting.body.state).toBe('sleeping');
    expect(waiting.body.activity.map((entry: { action: string }) => entry.action)).toEqual(['stock.reserve', 'payment.charge', 'warehouse.pick']);

    expect((await api('POST', `/orders/${waitingOrder}/packed`)).status).toBe(202);
    const done = await eventually(async () => {
      const { body } = await api('GET', `/orders/${waitingOrder}`);
      return body.state === 'completed' && body;
    }, 30_000, 'the waiting order to complete after the restart');
    expect(done.attempts).toBe(1);
    expect(done.activity.map((entry: { action: string }) => entry.action)).toEqual(['stock.reserve', 'payment.charge', 'warehouse.pick', 'email.send']);

    const exit = await interrupt(run);
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    await eventually(() => processesMentioning(dataDir).length === 0, 15_000, 'PostgreSQL to stop');
  }, 120_000);
});
