/**
 * Starting a chaos worker process (chaos/worker.ts, compiled by chaos/compile.ts) with its
 * settings; devkit/processes.ts does the rest (IPC, memory, kills, clean-up).
 */
import { WorkerProcess } from '../devkit/processes.js';
import { compileWorker, ROOT } from './compile.js';

export interface WorkerSettings {
  /** The database (the test's tables are written there directly). */
  databaseUrl: string;
  /** Durable's own connection, when it differs (e.g. a TCP proxy in front of the database). */
  durableUrl?: string;
  /** A fixed worker id (default `chaos-<pid>`): a replacement can take over its predecessor's. */
  workerId?: string;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs?: number;
  queryTimeoutMs?: number;
  logs?: 'all' | 'errors' | 'none';
  /** Register the `tick` task and its every-second schedule (chaos part 10). */
  ticks?: boolean;
  /** Every line the process prints. */
  onLine?: (line: string) => void;
}

/** Starts a worker process and resolves once it printed `ready` (its worker is claiming). */
export async function startChaosWorker(settings: WorkerSettings, bootTimeoutMs = 60_000): Promise<WorkerProcess> {
  const { entry } = await compileWorker();
  return WorkerProcess.start({
    entry,
    cwd: ROOT,
    nodeArgs: ['--expose-gc'],
    bootTimeoutMs,
    onLine: settings.onLine,
    env: {
      CHAOS_DATABASE_URL: settings.databaseUrl,
      CHAOS_DURABLE_URL: settings.durableUrl ?? '',
      CHAOS_WORKER_ID: settings.workerId ?? '',
      CHAOS_CONCURRENCY: String(settings.concurrency),
      CHAOS_LEASE_MS: String(settings.leaseMs),
      CHAOS_POLL_MS: String(settings.pollIntervalMs ?? 200),
      CHAOS_QUERY_TIMEOUT_MS: String(settings.queryTimeoutMs ?? 5000),
      CHAOS_LOGS: settings.logs ?? 'errors',
      CHAOS_TICKS: settings.ticks ? '1' : '',
      NO_COLOR: '1',
    },
  });
}
