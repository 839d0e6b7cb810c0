import type { SystemAdapter } from './types.js';

/**
 * Every system of the benchmark, in the order of the table. Loaded lazily: a peer's adapter
 * imports its package only inside its cells, so a missing package is reported, not fatal.
 */
export const SYSTEMS: Record<string, () => Promise<SystemAdapter>> = {
  durable: async () => (await import('./durable.js')).system,
  limit: async () => (await import('./limit.js')).system,
  'limit-1by1': async () => (await import('./limit.js')).unbatched,
  'pg-boss': async () => (await import('./pg-boss.js')).system,
  'graphile-worker': async () => (await import('./graphile-worker.js')).system,
  dbos: async () => (await import('./dbos.js')).system,
  absurd: async () => (await import('./absurd.js')).system,
  bullmq: async () => (await import('./bullmq.js')).system,
};
