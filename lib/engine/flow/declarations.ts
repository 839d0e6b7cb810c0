import type { Store } from '../db/store.js';
import type { HandlerRegistry } from '../registry/handler-registry.js';
import type { SchedulesClient } from '../schedules/schedules-client.js';
import { flowLimitOf } from './flow-options.js';

/**
 * What the handlers of a worker process declare, written when its worker starts (before its
 * first claim): the schedules of `@DurableTask({ schedule })`, and the limits of its task names (`concurrency`, `rateLimit`; a name declared without limits has its row removed). The
 * last process to start wins: during a rolling deploy, old and new limits alternate until every
 * worker runs the new code.
 */
export async function syncDeclarations(store: Store, registry: HandlerRegistry, schedules: SchedulesClient): Promise<void> {
  const tasks = registry.registered();
  if (tasks.length > 0) {
    await store.query(store.sql.syncFlowLimits(tasks.map(({ options, queue }) => flowLimitOf(options, queue))));
  }
  await schedules.declare(tasks);
}
