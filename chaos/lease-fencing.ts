/**
 * Part 2, the worker cut off from the database: worker A runs two tasks and is then cut off (a
 * network partition through a TCP proxy) long enough for its leases to expire; worker B takes
 * both over and completes them; A's connection comes back and A's handlers go on. A's late
 * writes must be refused by the database and A must stop without writing over B's work:
 * - task X: A is inside step s2 when it is cut off; its late checkpoint of s2 is refused, the
 *   handler stops there (s3 never runs in A), and X's checkpoints and result are B's;
 * - task Y: A has checkpointed every step and is about to return; its late completion is refused
 *   (A logs that the run was taken over), and Y's result is B's.
 * Both apps run in this process (the partition is A's alone); A's handler holds at a gate that
 * the run opens only once A can reach the database again.
 */
import 'reflect-metadata';
import { Inject, Module, type LoggerService, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type pg from 'pg';
import {
  DurableClient, DurableModule, DurableTask, type DurableModuleOptions, type DurableTaskHandler, type TaskContext,
} from '../lib/index.js';
import { TcpProxy } from '../devkit/tcp-proxy.js';
import { eventually } from '../devkit/wait.js';
import { chaosPool, installChaosTables } from './database.js';

export interface FencingOptions {
  /** A fresh database. */
  databaseUrl: string;
  leaseMs?: number;
  log?: (line: string) => void;
}

export interface FencingReport {
  /** The results stored for X and Y (both must be B's). */
  results: { x: unknown; y: unknown };
  /** How A's execution of X ended once A could reach the database again. */
  aStoppedX: string;
  /** A's late completion of Y was refused (A logged that the run had been taken over). */
  lateCompletionRefused: boolean;
  /** Checkpoint writes after B took over that came from A's attempt (must be 0). */
  lateCheckpointWrites: number;
  /** A completed a new task after the partition, on its own. */
  aRecovered: boolean;
  violations: string[];
}

const WHO = Symbol('which app');
const EFFECTS = Symbol('effects pool');

interface Gate {
  reached: Promise<void>;
  reach(): void;
  opened: Promise<void>;
  open(): void;
}

function gate(): Gate {
  const g = {} as Gate;
  g.reached = new Promise((resolve) => (g.reach = resolve));
  g.opened = new Promise((resolve) => (g.open = resolve));
  return g;
}

interface ExecutionRecord {
  taskId: string;
  who: string;
  attempt: number;
  stepsRun: number[];
  ended?: string;
}

interface FencedParams {
  /** Which gate of the run A holds at, and where. */
  key?: string;
  holdAt?: 'step' | 'return';
}

/** Per run of runLeaseFencing: the gates A's handler holds at, and every execution. */
const state = { gates: new Map<string, Gate>(), executions: [] as ExecutionRecord[] };

@DurableTask({ name: 'fenced', maxAttempts: 10, retry: { kind: 'fixed', delayMs: 50 } })
class FencedTask implements DurableTaskHandler<FencedParams, unknown> {
  constructor(
    @Inject(WHO) private readonly who: string,
    @Inject(EFFECTS) private readonly effects: pg.Pool,
  ) {}

  async run(params: FencedParams, ctx: TaskContext) {
    const record: ExecutionRecord = { taskId: ctx.taskId, who: this.who, attempt: ctx.attempt, stepsRun: [] };
    state.executions.push(record);
    const hold = async (at: 'step' | 'return') => {
      const g = params.key === undefined ? undefined : state.gates.get(params.key);
      if (this.who !== 'A' || params.holdAt !== at || !g) return;
      g.reach();
      await g.opened;
    };
    const step = (n: number) => ctx.step(`s${n}`, async () => {
      record.stepsRun.push(n);
      await this.effects.query('insert into chaos_effects (task_id, step, attempt, pid) values ($1, $2, $3, $4)', [
        ctx.taskId, n, ctx.attempt, process.pid,
      ]);
      if (n === 2) await hold('step');
      return `${this.who}:${n}`;
    });
    try {
      const s1 = await step(1);
      const s2 = await step(2);
      const s3 = await step(3);
      await hold('return');
      record.ended = 'returned';
      return { by: this.who, s1, s2, s3 };
    } catch (error) {
      record.ended = `threw ${(error as Error).name}: ${(error as Error).message}`;
      throw error;
    }
  }
}

class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];
  log(message: unknown) {
    this.lines.push(String(message));
  }
  warn(message: unknown) {
    this.lines.push(String(message));
  }
  error(message: unknown) {
    this.lines.push(String(message));
  }
}

async function startApp(options: DurableModuleOptions, providers: Provider[], logger: LoggerService) {
  @Module({ imports: [DurableModule.forRoot(options)], providers })
  class FencingAppModule {}
  const app = await NestFactory.createApplicationContext(FencingAppModule, { logger, abortOnError: false });
  return { app, client: app.get(DurableClient) };
}

export async function runLeaseFencing(options: FencingOptions): Promise<FencingReport> {
  const log = options.log ?? (() => undefined);
  const leaseMs = options.leaseMs ?? 1500;
  const violations: string[] = [];
  const check = (ok: boolean, what: string) => {
    if (!ok) violations.push(what);
  };
  state.gates.clear();
  state.executions.length = 0;

  const logger = new CapturingLogger();
  const client = await DurableClient.connect({ databaseUrl: options.databaseUrl, logger, poolSize: 4 }); // migrations
  const pool = chaosPool(options.databaseUrl);
  const target = new URL(options.databaseUrl);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
  const apps: { app: { close(): Promise<void> } }[] = [];
  try {
    await installChaosTables(pool);
    const proxiedUrl = await proxy.listen(options.databaseUrl);
    const worker = { leaseMs, pollIntervalMs: 100, concurrency: 4 };
    const a = await startApp(
      { databaseUrl: proxiedUrl, poolSize: 4, queryTimeoutMs: 2000, worker: { ...worker, workerId: 'A' } },
      [{ provide: WHO, useValue: 'A' }, { provide: EFFECTS, useValue: pool }, FencedTask],
      logger,
    );
    apps.push(a);

    const gx = gate();
    const gy = gate();
    state.gates.set('x', gx);
    state.gates.set('y', gy);
    const x = (await client.spawn('fenced', { key: 'x', holdAt: 'step' })).taskId;
    const y = (await client.spawn('fenced', { key: 'y', holdAt: 'return' })).taskId;
    await Promise.all([gx.reached, gy.reached]);
    proxy.freeze();
    log('fencing: A is cut off, inside X\'s step s2 and before Y\'s return');

    // As text: a Date keeps milliseconds only, and a write just before the takeover would read as after it.
    const { rows: [{ takeoverFrom }] } = await pool.query(`select clock_timestamp()::text as "takeoverFrom"`);
    const b = await startApp(
      { databaseUrl: options.databaseUrl, poolSize: 4, worker: { ...worker, workerId: 'B' } },
      [{ provide: WHO, useValue: 'B' }, { provide: EFFECTS, useValue: pool }, FencedTask],
      logger,
    );
    apps.push(b);
    const results = {
      x: await client.awaitResult(x, { timeoutMs: 30_000 }),
      y: await client.awaitResult(y, { timeoutMs: 30_000 }),
    };
    log('fencing: B completed X and Y; A\'s connection comes back');

    proxy.restore();
    // A can reach the database again before its handlers go on, so a refusal is the fence's.
    await eventually(() => a.client.getTask(x).then(() => true, () => false), 30_000, 'A to reach the database again', 50);
    gx.open();
    gy.open();
    const aExecutions = () => state.executions.filter((e) => e.who === 'A' && (e.taskId === x || e.taskId === y));
    await eventually(() => aExecutions().every((e) => e.ended !== undefined), 30_000, 'A\'s handlers to end', 50);
    // A's late completion of Y goes through its batched writes: wait for its outcome to be logged.
    const refusedLine = (line: string) => line.includes(`task ${y}`) && line.includes('attempt 1') && /not recorded|taken over/.test(line);
    const lateCompletionRefused = await eventually(() => logger.lines.some(refusedLine), 15_000, 'A to log the refused completion', 50)
      .catch(() => false);

    // Results and runs: B's.
    check(JSON.stringify(results.x) === JSON.stringify({ by: 'B', s1: 'A:1', s2: 'B:2', s3: 'B:3' }), `X's result is not B's: ${JSON.stringify(results.x)}`);
    check(JSON.stringify(results.y) === JSON.stringify({ by: 'B', s1: 'A:1', s2: 'A:2', s3: 'A:3' }), `Y's result is not B's: ${JSON.stringify(results.y)}`);
    for (const [name, id] of [['X', x], ['Y', y]]) {
      const { rows: stored } = await pool.query(`select state, result from durable.tasks where id = $1`, [id]);
      check(stored[0]?.state === 'completed' && stored[0].result.by === 'B', `${name} as stored: ${JSON.stringify(stored[0])}`);
      const { rows: runs } = await pool.query(
        `select attempt, state, worker_id, error->>'name' as error from durable.runs where task_id = $1 order by attempt`,
        [id],
      );
      check(
        JSON.stringify(runs) === JSON.stringify([
          { attempt: 1, state: 'failed', worker_id: 'A', error: 'LeaseExpired' },
          { attempt: 2, state: 'completed', worker_id: 'B', error: null },
        ]),
        `${name}'s runs: ${JSON.stringify(runs)}`,
      );
      const { rows: completions } = await pool.query(
        `select r.attempt from public.chaos_completions c join durable.runs r on r.id = c.run_id where c.task_id = $1`,
        [id],
      );
      check(JSON.stringify(completions) === JSON.stringify([{ attempt: 2 }]), `${name}'s completions: ${JSON.stringify(completions)}`);
    }

    // Checkpoints: written once each; X's s2 and s3 by B; nothing from A after the takeover.
    const { rows: writes } = await pool.query<{ task_id: string; name: string; attempt: number; op: string; late: boolean }>(
      `select task_id, name, attempt, op, written_at > $1::timestamptz as late from public.chaos_checkpoint_writes where task_id = any($2) order by written_at`,
      [takeoverFrom, [x, y]],
    );
    const summary = (id: string) => writes.filter((w) => w.task_id === id).map((w) => `${w.name}@${w.attempt}${w.op === 'INSERT' ? '' : ` ${w.op}`}`);
    check(JSON.stringify(summary(x)) === JSON.stringify(['step:s1@1', 'step:s2@2', 'step:s3@2']), `X's checkpoint writes: ${summary(x).join(', ')}`);
    check(JSON.stringify(summary(y)) === JSON.stringify(['step:s1@1', 'step:s2@1', 'step:s3@1']), `Y's checkpoint writes: ${summary(y).join(', ')}`);
    const lateCheckpointWrites = writes.filter((w) => w.late && w.attempt === 1).length;
    check(lateCheckpointWrites === 0, `${lateCheckpointWrites} checkpoint write(s) of A's attempt after the takeover`);

    // A's executions: X stopped at its refused checkpoint of s2 (s3 never ran in A); Y returned and its completion was refused.
    const ax = aExecutions().find((e) => e.taskId === x);
    const ay = aExecutions().find((e) => e.taskId === y);
    check(aExecutions().length === 2, `A executed X and Y ${aExecutions().length} times in all`);
    check(JSON.stringify(ax?.stepsRun) === JSON.stringify([1, 2]), `A ran X's steps ${JSON.stringify(ax?.stepsRun)}`);
    check(/^threw DurableControlSignal: .*\(lease-lost\)/.test(ax?.ended ?? ''), `A's execution of X ended with "${ax?.ended}", not the lease-lost stop`);
    check(ay?.ended === 'returned', `A's execution of Y ended with "${ay?.ended}"`);
    check(lateCompletionRefused, 'A did not log that its completion of Y was refused');
    const { rows: effects } = await pool.query<{ task_id: string; step: number; attempt: number }>(
      `select task_id, step, attempt from public.chaos_effects where task_id = any($1) order by task_id, step, attempt`,
      [[x, y]],
    );
    const effectsOf = (id: string) => effects.filter((e) => e.task_id === id).map((e) => `s${e.step}@${e.attempt}`);
    // X's s2 ran twice (A's was in flight when A was cut off: at-least-once); everything else once.
    check(JSON.stringify(effectsOf(x)) === JSON.stringify(['s1@1', 's2@1', 's2@2', 's3@2']), `X's effects: ${effectsOf(x).join(', ')}`);
    check(JSON.stringify(effectsOf(y)) === JSON.stringify(['s1@1', 's2@1', 's3@1']), `Y's effects: ${effectsOf(y).join(', ')}`);

    // A carries on by itself: with B gone, A completes a new task.
    await b.app.close();
    apps.splice(apps.indexOf(b), 1);
    const z = (await client.spawn('fenced', {})).taskId;
    const zResult = await client.awaitResult(z, { timeoutMs: 30_000 }).catch((error: Error) => error.message);
    const aRecovered = JSON.stringify(zResult) === JSON.stringify({ by: 'A', s1: 'A:1', s2: 'A:2', s3: 'A:3' });
    check(aRecovered, `A's result for a new task after the partition: ${JSON.stringify(zResult)}`);

    return {
      results, aStoppedX: ax?.ended ?? 'did not end', lateCompletionRefused, lateCheckpointWrites, aRecovered, violations,
    };
  } finally {
    for (const gateOf of state.gates.values()) gateOf.open();
    proxy.restore();
    for (const { app } of apps.reverse()) await app.close().catch(() => undefined);
    await proxy.close();
    await client.close();
    await pool.end();
  }
}
