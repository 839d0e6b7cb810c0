import { DurableTask, type DurableTaskHandler, type TaskContext } from 'nestjs-durable';
import { WarehouseService, type Pick, type PickRequest } from '../shop/warehouse.service.js';
import { PICK_LINE_TASK } from './order.types.js';

/**
 * One line of an order, picked in the warehouse: a child task of the order (its `ctx.spawn`),
 * so the lines of an order are picked in parallel, each retried on its own, and the order
 * waits for all of them without holding a worker slot.
 */
@DurableTask({ name: PICK_LINE_TASK, maxAttempts: 5, retry: { kind: 'exponential', baseDelayMs: 500, maxDelayMs: 10_000 } })
export class PickLineTask implements DurableTaskHandler<PickRequest, Pick> {
  constructor(private readonly warehouse: WarehouseService) {}

  run(params: PickRequest, ctx: TaskContext): Promise<Pick> {
    return ctx.step('pick', () => this.warehouse.pick(params));
  }
}
