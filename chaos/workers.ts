/**
 * Starting a chaos worker process (chaos/worker.ts, compiled by chaos/compile.ts) with its
 * settings; devkit/processes.ts does the rest (IPC, memory, kills, clean-up).
 */
import { WorkerProcess } from '../devkit/processes.js';
import { compileWorker, ROOT } from './compile.js';

export interface WorkerSettings {
  databaseUrl: string;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs?: number;
  queryTimeoutMs?: number;
  logs?: 'all' | 'errors' | 'none';
}

/** Starts a worker process and resolves once it printed `ready` (its worker is claiming). */
export async function startChaosWorker(settings: WorkerSettings, bootTimeoutMs = 60_000): Promise<WorkerProcess> {
  const { entry } = await compileWorker();
  return WorkerProcess.start({
    entry,
    cwd: ROOT,
    nodeArgs: ['--expose-gc'],
    bootTimeoutMs,
    env: {
      CHAOS_DATABASE_URL: settings.databaseUrl,
      CHAOS_CONCURRENCY: String(settings.concurrency),
      CHAOS_LEASE_MS: String(settings.leaseMs),
      CHAOS_POLL_MS: String(settings.pollIntervalMs ?? 200),
      CHAOS_QUERY_TIMEOUT_MS: String(settings.queryTimeoutMs ?? 5000),
      CHAOS_LOGS: settings.logs ?? 'errors',
      NO_COLOR: '1',
    },
  });
}
