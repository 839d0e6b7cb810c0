/**
 * The one PostgreSQL server of a benchmark run: the server of BENCH_DATABASE_URL, or an
 * embedded one when that is unreachable (fresh databases on it: devkit/databases.ts); and the
 * server-side meters (commits, WAL, CPU of the Postgres processes).
 */
import { readFileSync, readdirSync } from 'node:fs';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../devkit/index.js';
import { redactUrl } from '../../devkit/redact.js';
import { sleep } from '../../devkit/wait.js';

export interface PgServer {
  kind: 'external' | 'embedded';
  adminUrl: string;
  /** The admin connection (to the admin URL's database), for meters and CREATE DATABASE. */
  admin: pg.Client;
  /** The postmaster's pid when the server runs on this machine (for its CPU time). */
  postmasterPid: number | undefined;
  stop(): Promise<void>;
}

export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

export async function startServer(log: (line: string) => void): Promise<PgServer> {
  // A server of the bench's own: nothing else writes WAL or commits there (noise-free costs).
  if (process.env.BENCH_PRIVATE === '1') {
    log('BENCH_PRIVATE=1: starting a private embedded PostgreSQL (nothing else runs on it)');
    return startEmbedded();
  }
  const adminUrl = process.env.BENCH_DATABASE_URL ?? DEFAULT_ADMIN_URL;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  try {
    await admin.connect();
    return { kind: 'external', adminUrl, admin, postmasterPid: await postmasterOf(admin), stop: () => admin.end() };
  } catch (error) {
    await admin.end().catch(() => undefined);
    if (process.env.BENCH_DATABASE_URL) throw error;
    log(`${redactUrl(adminUrl)} is not reachable (${(error as Error).message}); starting an embedded PostgreSQL`);
    return startEmbedded();
  }
}

async function startEmbedded(): Promise<PgServer> {
  // max_connections as the benchmark has always measured with.
  const server = await startEmbeddedPostgres({ prefix: 'durable-bench-pg-', maxConnections: 200 });
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  return {
    kind: 'embedded',
    adminUrl: server.adminUrl,
    admin,
    postmasterPid: await postmasterOf(admin),
    stop: async () => {
      await admin.end().catch(() => undefined);
      await server.destroy();
    },
  };
}

/** The parent of our backend, if it is a local postgres process. */
async function postmasterOf(admin: pg.Client): Promise<number | undefined> {
  const { rows } = await admin.query('select pg_backend_pid() as pid');
  try {
    const ppid = Number(statFields(rows[0].pid as number)[1]);
    const comm = readFileSync(`/proc/${ppid}/comm`, 'utf8').trim();
    return comm.startsWith('postgres') || comm.startsWith('postmaster') ? ppid : undefined;
  } catch {
    return undefined; // not on this machine
  }
}

/**
 * A checkpoint now, so that no timed checkpoint falls into the measured window and the pages
 * written after it cost the same WAL for every system (no full-page images on first touch).
 */
export async function checkpoint(server: PgServer): Promise<void> {
  await server.admin.query('checkpoint').catch(() => undefined); // needs superuser (or pg_checkpoint)
}

export interface DbMeters {
  xactCommit: number;
  xactRollback: number;
  /** Commits of every other database of the server: > 0 across a window means the WAL figure is not ours alone. */
  otherCommits: number;
  walLsn: string;
}

/**
 * Commits of one database and the server's WAL position. Backends publish their commit counts
 * when they exit (and, while idle, only every few seconds): read this when no backend of that
 * database is left (`waitNoBackends`).
 */
export async function dbMeters(server: PgServer, database: string): Promise<DbMeters> {
  // A fresh snapshot of the statistics, not the one cached in this transaction.
  await server.admin.query('select pg_stat_clear_snapshot()');
  const { rows } = await server.admin.query(
    `select (select xact_commit from pg_stat_database where datname = $1)::bigint as commits,
            (select xact_rollback from pg_stat_database where datname = $1)::bigint as rollbacks,
            (select coalesce(sum(xact_commit), 0) from pg_stat_database where datname is not null and datname <> $1 and datname <> current_database())::bigint as others,
            pg_current_wal_insert_lsn()::text as lsn`,
    [database],
  );
  return {
    xactCommit: Number(rows[0].commits ?? 0),
    xactRollback: Number(rows[0].rollbacks ?? 0),
    otherCommits: Number(rows[0].others ?? 0),
    walLsn: rows[0].lsn as string,
  };
}

export async function walBytesBetween(server: PgServer, from: string, to: string): Promise<number> {
  const { rows } = await server.admin.query('select pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::float8 as bytes', [from, to]);
  return Number(rows[0].bytes);
}

/** Waits until no backend is connected to the database (so that its statistics are flushed). */
export async function waitNoBackends(server: PgServer, database: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await server.admin.query(
      'select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [database],
    );
    if (rows[0].n === 0) return;
    if (Date.now() > deadline) throw new Error(`${rows[0].n} connection(s) to ${database} still open after ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** CPU seconds of all Postgres processes: the postmaster, its live children and the reaped ones. */
export function pgCpuSeconds(server: PgServer): number {
  const pm = server.postmasterPid;
  if (pm === undefined) return Number.NaN;
  let ticks = 0;
  try {
    const own = statFields(pm);
    ticks += Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  } catch {
    return Number.NaN;
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(Number(entry));
      if (Number(fields[1]) === pm) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile: its time moves to the postmaster's cutime/cstime
    }
  }
  return ticks / CLOCK_TICKS;
}

/** CPU seconds (user + system, all threads) of one process, or NaN when it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const fields = statFields(pid);
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

const CLOCK_TICKS = 100;

/** Fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid, ..., [11] utime, [12] stime, [13] cutime, [14] cstime. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

export interface ServerInfo {
  version: string;
  settings: Record<string, string>;
}

export async function serverInfo(server: PgServer): Promise<ServerInfo> {
  const { rows } = await server.admin.query('select version() as version');
  const names = ['synchronous_commit', 'fsync', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_connections', 'max_wal_size', 'wal_compression'];
  const settings: Record<string, string> = {};
  for (const name of names) {
    const result = await server.admin.query(`select current_setting($1, true) as value`, [name]);
    settings[name] = result.rows[0].value as string;
  }
  return { version: rows[0].version as string, settings };
}
