import type { SpawnRow, WorkerWrite } from './statement-types.js';

// The batched functions (`spawn_batch`, `write_batch`) take their operations as one JSON
// argument. Values are JSON text already, so they are spliced in as they are instead of being
// parsed and written again.

/** `[[queue, name, params, headers, max_attempts, retry, cancellation, key, delay_ms, run_at, priority, concurrency_key], ...]` */
export function encodeSpawns(spawns: SpawnRow[]): string {
  return `[${spawns
    .map((r) =>
      `[${JSON.stringify(r.queue)},${JSON.stringify(r.name)},${r.params},${r.headers},${r.maxAttempts},${r.retry},` +
      `${r.cancellation ?? 'null'},${JSON.stringify(r.idempotencyKey)},${r.delayMs ?? 'null'},` +
      `${r.runAt ? JSON.stringify(r.runAt.toISOString()) : 'null'},${r.priority},${JSON.stringify(r.concurrencyKey)}]`,
    )
    .join(',')}]`;
}

/** `[{ kind, task_id, run_id, epoch, name, value, undefined, attempt, lease_ms }, ...]` */
export function encodeWrites(writes: WorkerWrite[]): string {
  return `[${writes
    .map((w) =>
      `{"kind":"${w.kind}","task_id":"${w.taskId}","run_id":"${w.runId}","epoch":${w.epoch},` +
      `"name":${JSON.stringify(w.name ?? null)},"value":${w.value ?? 'null'},` +
      `"undefined":${w.value === null},"attempt":${w.attempt},"lease_ms":${w.leaseMs}}`,
    )
    .join(',')}]`;
}
