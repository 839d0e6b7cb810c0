import type { SpawnRow } from '../sql/statements.js';

/** What a spawn hook hears about a spawn about to be written. */
export interface SpawnInfo {
  taskName: string;
  queue: string;
  /** Spawned by `ctx.spawn` (a child task) rather than by `client.spawn`. */
  child: boolean;
}

/** How a spawn ended: the task (created, or an existing one for the idempotency key), or the error. */
export type SpawnOutcome = { taskId: string; created: boolean } | { error: unknown };

/**
 * Told of every spawn before it is written (telemetry injects its trace context here). It may
 * add headers (the caller's own header keys win) and ask to hear the outcome. A hook that
 * throws is ignored (the spawn goes on without it).
 */
export interface SpawnHook {
  beforeSpawn(spawn: SpawnInfo): { headers?: Record<string, string>; after?(outcome: SpawnOutcome): void } | undefined;
}

/** The client's spawn hooks, applied to a checked row. */
export class SpawnHooks {
  private readonly hooks = new Set<SpawnHook>();

  add(hook: SpawnHook): () => void {
    this.hooks.add(hook);
    return () => this.hooks.delete(hook);
  }

  /** The row with the hooks' headers added, and the function that tells them the outcome. */
  apply(row: SpawnRow, child: boolean): { row: SpawnRow; after(outcome: SpawnOutcome): void } {
    if (this.hooks.size === 0) return { row, after: () => undefined };
    const added: Record<string, string> = {};
    const afters: ((outcome: SpawnOutcome) => void)[] = [];
    for (const hook of this.hooks) {
      try {
        const result = hook.beforeSpawn({ taskName: row.name, queue: row.queue, child });
        Object.assign(added, result?.headers);
        if (result?.after) afters.push(result.after);
      } catch {
        // A hook never stops a spawn.
      }
    }
    const headers = Object.keys(added).length === 0 ? row.headers
      : JSON.stringify({ ...added, ...(JSON.parse(row.headers) as Record<string, unknown>) });
    return {
      row: { ...row, headers },
      after: (outcome) => {
        for (const after of afters) {
          try {
            after(outcome);
          } catch {
            // As above.
          }
        }
      },
    };
  }
}
