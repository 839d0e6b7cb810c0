// Worker processes seen from the parent, for the chaos suite (and any test that needs real
// processes): start one and wait for `ready <pid>`, talk to it over IPC, read its resident memory
// from /proc, kill it, and kill whatever is left at the end. The child's side is devkit/child.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sleep } from './wait.js';

/** Output kept per process: the beginning and the end (enough for a report, bounded in memory). */
const KEEP_CHARS = 64 * 1024;

export interface WorkerStart {
  /** The script node runs (plain JavaScript: no loader between parent and worker). */
  entry: string;
  /** Added to this process's environment (NODE_OPTIONS is not passed on). */
  env?: NodeJS.ProcessEnv;
  /** Node's own flags (default none). */
  nodeArgs?: string[];
  cwd?: string;
  /** How long the process may take to print `ready <pid>` (default 60 s). */
  bootTimeoutMs?: number;
  /** Called with every whole line the process prints (stdout and stderr), from its first one. */
  onLine?: (line: string) => void;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<WorkerProcess>();

export class WorkerProcess {
  readonly exited: Promise<Exit>;
  private exit: Exit | undefined;
  private head = '';
  private tail = '';
  private partial = '';
  private escapedLines = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (body: Record<string, unknown>) => void; reject: (error: Error) => void }>();
  private ready = false;
  private readySince = 0;

  private constructor(
    private readonly child: ChildProcess,
    private readonly onLine?: (line: string) => void,
  ) {
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        for (const { reject } of this.pending.values()) reject(new Error(`worker ${this.pid} exited (${signal ?? code})`));
        this.pending.clear();
        resolveExit({ code, signal });
      });
    });
    const collect = (chunk: Buffer) => this.append(chunk.toString());
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.on('message', (message: { id: number; error?: string }) => {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new Error(message.error));
      else waiter.resolve(message as Record<string, unknown>);
    });
    // A write to a process that died meanwhile: the exit handler reports it.
    child.on('error', () => undefined);
  }

  /** Starts a worker process and resolves once it printed `ready <pid>` (it is at work). */
  static async start(start: WorkerStart): Promise<WorkerProcess> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...start.env };
    delete env.NODE_OPTIONS; // Jest's --experimental-vm-modules is not for the child
    // One process, no launcher in between: its pid is the pid the worker reports.
    const child = spawn(process.execPath, [...(start.nodeArgs ?? []), start.entry], {
      cwd: start.cwd, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const worker = new WorkerProcess(child, start.onLine);
    live.add(worker);
    await worker.waitReady(start.bootTimeoutMs ?? 60_000);
    return worker;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get isReady(): boolean {
    return this.ready && this.exit === undefined;
  }

  /** How long the process has been up and claiming (0 before it is ready). */
  get uptimeMs(): number {
    return this.isReady ? Date.now() - this.readySince : 0;
  }

  get isAlive(): boolean {
    return this.exit === undefined;
  }

  /** Lines the process printed as `ESCAPED ...` (an unhandled rejection or uncaught exception). */
  get escaped(): number {
    return this.escapedLines;
  }

  output(): string {
    return this.tail.length === 0 ? this.head : `${this.head}\n[...]\n${this.tail}`;
  }

  /** Resident set size in bytes (VmRSS), or undefined once the process is gone. */
  rssBytes(): number | undefined {
    try {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return match ? Number(match[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  request<T = Record<string, unknown>>(body: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
    if (!this.isAlive) return Promise.reject(new Error(`worker ${this.pid} is not running`));
    const id = this.nextId++;
    return new Promise<T>((resolveBody, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${this.pid} did not answer ${String(body.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolveBody(answer as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ id, ...body });
    });
  }

  /** SIGKILL, and resolves once the process is gone. */
  async kill(): Promise<Exit> {
    if (this.isAlive) this.child.kill('SIGKILL');
    return this.exited;
  }

  /** SIGTERM (the app closes and the worker drains); SIGKILL if it has not exited in time. */
  async terminate(timeoutMs = 15_000): Promise<Exit> {
    if (!this.isAlive) return this.exited;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolveLate) => (timer = setTimeout(() => resolveLate('late'), timeoutMs)));
    const outcome = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (outcome === 'late') return this.kill();
    return outcome;
  }

  private append(text: string): void {
    // Whole lines only: a chunk can end in the middle of one.
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop()!.slice(-4096);
    for (const line of lines) {
      this.onLine?.(line);
      if (line.startsWith('ESCAPED ')) this.escapedLines += 1;
      if (line === `ready ${this.pid}` && !this.ready) {
        this.ready = true;
        this.readySince = Date.now();
      }
    }
    if (this.head.length < KEEP_CHARS) {
      const room = KEEP_CHARS - this.head.length;
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    if (text) this.tail = (this.tail + text).slice(-KEEP_CHARS);
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready) {
      if (this.exit) throw new Error(`worker ${this.pid} exited during startup (${this.exit.signal ?? this.exit.code}):\n${this.output()}`);
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`worker ${this.pid} not ready within ${timeoutMs} ms:\n${this.output()}`);
      }
      await sleep(20);
    }
  }
}

/** Kills every worker process still running (the end of a run, or a failed one). */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...live].map((worker) => worker.kill()));
}

const cleanUps: (() => Promise<void>)[] = [];

/** Makes the next cleanUpWorkers() run `fn` too (e.g. delete the build the workers ran). */
export function onCleanUp(fn: () => Promise<void>): void {
  cleanUps.push(fn);
}

/** Kills what is left and runs the clean-ups registered with onCleanUp. */
export async function cleanUpWorkers(): Promise<void> {
  await killAllWorkers();
  for (const fn of cleanUps.splice(0)) await fn().catch(() => undefined);
}
