import { createHash } from 'node:crypto';
import { ConflictException, Injectable, Logger, NotFoundException, UnprocessableEntityException } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DurableClient, type TaskSnapshot, type TaskState } from 'nestjs-durable';
import { DataSource, type Repository } from 'typeorm';
import { ActivityLog, type Activity } from '../shop/activity-log.service.js';
import { PaymentService } from '../shop/payment.service.js';
import { StockService } from '../shop/stock.service.js';
import type { Pick, PickRequest } from '../shop/warehouse.service.js';
import type { CreateOrderDto } from './create-order.dto.js';
import type { ListOrdersQuery } from './list-orders.query.js';
import { Order } from './order.entity.js';
import { OrderTask } from './order.task.js';
import { ORDER_TASK, orderTotalCents, packedEventName, type OrderParams, type OrderResult } from './order.types.js';

export interface OrderSummary {
  id: string;
  state: TaskState;
  attempts: number;
  customerEmail: string;
  totalCents: number;
  result?: OrderResult;
  error?: { name: string; message: string };
  createdAt: string;
  updatedAt: string;
}

/** A child task of an order: the pick of one line item. */
export interface OrderLine {
  taskId: string;
  line: number;
  sku: string;
  state: TaskState;
  attempts: number;
  result?: Pick;
  error?: { name: string; message: string };
}

export interface OrderDetail extends OrderSummary {
  items: OrderParams['items'];
  /** The order's child tasks (one per line item, by line), as durable lists them. */
  lines: OrderLine[];
  /** Every call made to the outside systems for this order, oldest first. */
  activity: Activity[];
}

export interface CreatedOrder {
  id: string;
  created: boolean;
}

const TERMINAL: TaskState[] = ['completed', 'failed', 'cancelled'];

type OrderTaskSnapshot = TaskSnapshot<OrderParams, OrderResult>;

/**
 * What the HTTP API does: the order rows through TypeORM (`sample.orders`), the workflows
 * through `DurableClient`, both on the one DataSource.
 */
@Injectable()
export class OrdersService {
  private readonly logger = new Logger(OrdersService.name);

  constructor(
    private readonly dataSource: DataSource,
    @InjectRepository(Order) private readonly orders: Repository<Order>,
    private readonly durable: DurableClient,
    private readonly payments: PaymentService,
    private readonly stock: StockService,
    private readonly activity: ActivityLog,
  ) {}

  async create(dto: CreateOrderDto, idempotencyKey?: string): Promise<CreatedOrder> {
    // Plain JSON, whatever the validation pipe made of the body.
    const params: OrderParams = {
      customerEmail: dto.customerEmail,
      items: dto.items.map(({ sku, quantity, unitPriceCents }) => ({ sku, quantity, unitPriceCents })),
      ...(dto.failFirstPayment ? { failFirstPayment: true } : {}),
    };
    const requestHash = createHash('sha256').update(JSON.stringify(params)).digest('hex');
    // One transaction: the order row and its task commit together or not at all. The spawn
    // comes first because the row's id is the task's id; if the insert fails, the spawn is
    // rolled back with it (and an Idempotency-Key stays unused).
    const { taskId, created } = await this.dataSource.transaction(async (manager) => {
      const spawned = await this.durable.spawn(OrderTask, params, {
        manager,
        headers: { requestHash },
        ...(idempotencyKey === undefined ? {} : { idempotencyKey: `orders:${idempotencyKey}` }),
      });
      // A replayed key returns the existing task, whose order row was written with it.
      if (spawned.created) {
        await manager.insert(Order, {
          id: spawned.taskId,
          customerEmail: params.customerEmail,
          totalCents: orderTotalCents(params.items),
          itemCount: params.items.length,
        });
      }
      return spawned;
    });
    if (!created) {
      // The key was used before: same body, same order; another body is a client bug.
      const existing = await this.durable.getTask(taskId);
      if (existing?.headers.requestHash !== requestHash) {
        throw new UnprocessableEntityException('this Idempotency-Key was already used for a different order');
      }
    }
    this.logger.log(created ? `order ${taskId}: spawned` : `order ${taskId}: Idempotency-Key replayed, no new order`);
    return { id: taskId, created };
  }

  async get(id: string): Promise<OrderDetail> {
    const { order, task } = await this.find(id);
    return { ...summarize(task, order), items: task.params.items, lines: await this.lines(id), activity: await this.activity.forOrder(id) };
  }

  async list(query: ListOrdersQuery): Promise<{ orders: OrderSummary[]; nextCursor: string | null }> {
    const limit = query.limit ?? 20;
    // Newest first, filtered by state and paged by task id: what durable's task list does.
    const tasks = await this.durable.listTasks({ name: ORDER_TASK, state: query.state, cursor: query.cursor, limit });
    const orders = (tasks as OrderTaskSnapshot[]).map((task) => summarize(task));
    return { orders, nextCursor: orders.length === limit ? orders[orders.length - 1]!.id : null };
  }

  async markPacked(id: string): Promise<{ id: string; event: string }> {
    const { task } = await this.find(id);
    if (TERMINAL.includes(task.state)) throw new ConflictException(`order ${id} is ${task.state}; nothing to pack`);
    const event = packedEventName(id);
    // An event is a latch: emitted before the order waits for it, it is still received.
    await this.durable.emitEvent(event, { packedAt: new Date().toISOString() });
    this.logger.log(`order ${id}: packed (emitted ${event})`);
    return { id, event };
  }

  async cancel(id: string): Promise<OrderDetail> {
    await this.find(id);
    await this.durable.cancel(id); // a no-op on a finished order
    const { task } = await this.find(id);
    if (task.state !== 'cancelled') {
      throw new ConflictException(`order ${id} is ${task.state}; only an unfinished order can be cancelled`);
    }
    // A cancelled task never runs another step, so compensate here. Both calls are idempotent
    // and leave tombstones: a charge or reservation still in flight is refused when it lands.
    await this.payments.refund(id, id);
    await this.stock.release(id);
    this.logger.log(`order ${id}: cancelled`);
    return this.get(id);
  }

  /** The order's children: durable's `listTasks({ parentTaskId })` (an order has far fewer lines than one page). */
  private async lines(id: string): Promise<OrderLine[]> {
    const children = (await this.durable.listTasks({ parentTaskId: id, limit: 1000 })) as Array<TaskSnapshot<PickRequest, Pick>>;
    return children
      .map((child) => ({
        taskId: child.taskId,
        line: child.params.line,
        sku: child.params.sku,
        state: child.state,
        attempts: child.attempts,
        ...(child.result === undefined ? {} : { result: child.result }),
        ...(child.error === undefined ? {} : { error: { name: child.error.name, message: child.error.message } }),
      }))
      .sort((a, b) => a.line - b.line);
  }

  /** The order row and its task; 404 without the row. */
  private async find(id: string): Promise<{ order: Order; task: OrderTaskSnapshot }> {
    const order = await this.orders.findOneBy({ id });
    const task = order && (await this.durable.getTask<OrderParams, OrderResult>(id));
    if (!order || !task || task.name !== ORDER_TASK) throw new NotFoundException(`order ${id} not found`);
    return { order, task };
  }
}

/** An order's summary: its facts from the order row (or, in lists, the task's params), its progress from the task. */
function summarize(task: OrderTaskSnapshot, order?: Order): OrderSummary {
  return {
    id: task.taskId,
    state: task.state,
    attempts: task.attempts,
    customerEmail: order?.customerEmail ?? task.params.customerEmail,
    totalCents: order?.totalCents ?? orderTotalCents(task.params.items),
    ...(task.result === undefined ? {} : { result: task.result }),
    ...(task.error === undefined ? {} : { error: { name: task.error.name, message: task.error.message } }),
    createdAt: task.createdAt.toISOString(),
    updatedAt: task.updatedAt.toISOString(),
  };
}
