/**
 * The `idle` rows of nestjs-durable: `settings.processes` worker processes (bench/idle-process.ts),
 * each serving `settings.queues` queues and `settings.names` task names, with nothing to do.
 * The cell waits until they booted and settled (BENCH_IDLE_SETTLE s, default 12: Postgres
 * publishes an idle backend's counters up to 10 s late), pauses autovacuum on a private server
 * (BENCH_PRIVATE=1), opens the window (`probe.started()`:
 * the orchestrator reads the database's transaction count and the WAL position), idles
 * BENCH_IDLE_SECONDS (default 60), and reports the statements the processes counted themselves.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { IDLE_SECONDS, IDLE_SETTLE, sleep, type Cell, type CellContext, type CellOutcome } from './types.js';
import { DurableClient } from '../../lib/index.js';


function message<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`idle process: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
    const listener = (m: { type: string }) => {
      if (m?.type !== type) return;
      clearTimeout(timer);
      child.off('message', listener);
      resolve(m as T);
    };
    child.on('message', listener);
    child.once('exit', (code) => reject(new Error(`idle process exited (${code})`)));
  });
}

/** Turns autovacuum off or back on (the server's setting; the bench's user is a superuser). */
async function setAutovacuum(databaseUrl: string, on: boolean): Promise<void> {
  const sql = new pg.Client({ connectionString: databaseUrl });
  await sql.connect();
  try {
    await sql.query(on ? 'alter system reset autovacuum' : 'alter system set autovacuum = off');
    await sql.query('select pg_reload_conf()');
  } finally {
    await sql.end();
  }
}

export function idleCell(ctx: CellContext): Cell {
  const children: ChildProcess[] = [];
  return {
    async prepare() {
      const client = await DurableClient.connect({ databaseUrl: ctx.databaseUrl, logger: { log: () => undefined, warn: () => undefined, error: console.error } });
      await client.close();
    },
    async run(): Promise<CellOutcome> {
      const processes = Number(ctx.settings.processes ?? 1);
      const spec = { databaseUrl: ctx.databaseUrl, queues: Number(ctx.settings.queues ?? 1), names: Number(ctx.settings.names ?? 1) };
      for (let i = 0; i < processes; i += 1) {
        children.push(fork(fileURLToPath(new URL('../idle-process.ts', import.meta.url)), [], {
          execArgv: ['--import', import.meta.resolve('tsx'), '--disable-warning=ExperimentalWarning'],
          env: { ...process.env, BENCH_IDLE: JSON.stringify(spec) },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }));
      }
      await Promise.all(children.map((child) => message(child, 'ready', 120_000)));
      await sleep(IDLE_SETTLE * 1000);
      // On the private server, autovacuum is paused over the window: its one-off visit after the
      // migrations' catalog churn or the processes' first rows (hundreds of kB of WAL, once) is not
      // what idling costs. Never on a shared server, whose settings are not the bench's.
      const pause = process.env.BENCH_PRIVATE === '1';
      if (pause) await setAutovacuum(ctx.databaseUrl, false);
      let t0: number;
      try {
        for (const child of children) child.send({ type: 'mark' });
        ctx.probe.started();
        t0 = Date.now();
        await sleep(IDLE_SECONDS * 1000);
      } finally {
        if (pause) await setAutovacuum(ctx.databaseUrl, true);
      }
      const reports = await Promise.all(children.map((child) => {
        const reply = message<{ statements: number }>(child, 'report', 10_000);
        child.send({ type: 'report' });
        return reply;
      }));
      const seconds = (Date.now() - t0) / 1000;
      const statements = reports.reduce((sum, report) => sum + report.statements, 0);
      // processes 0: the baseline, what the server writes with no worker at all.
      if (processes === 0) return { extra: { processes } };
      return { extra: { processes, clientStatementsPerSec: statements / seconds, clientStatementsPerSecPerProcess: statements / seconds / processes } };
    },
    async close() {
      await Promise.all(children.map((child) => new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.send({ type: 'stop' });
      })));
    },
  };
}
