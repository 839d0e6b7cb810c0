import { Logger } from '@nestjs/common';
import { DurableTask, EventTimeoutError, NonRetryableError, type DurableTaskHandler, type TaskContext, type TaskHandle } from 'nestjs-durable';
import { MailerService } from '../shop/mailer.service.js';
import { PaymentRefusedError, PaymentService } from '../shop/payment.service.js';
import { StockService } from '../shop/stock.service.js';
import type { Pick } from '../shop/warehouse.service.js';
import { OrderSettings } from './order-settings.js';
import { PickLineTask } from './pick-line.task.js';
import { ORDER_TASK, orderTotalCents, packedEventName, type OrderParams, type OrderResult, type PackedEvent } from './order.types.js';

/**
 * The order workflow. Every effect is a step, so a retry or a restart skips what already
 * happened; the task id is the idempotency key toward the outside systems, so a step that ran
 * but whose checkpoint was lost (a crash in between) does not charge or email twice.
 */
@DurableTask({ name: ORDER_TASK, maxAttempts: 5, retry: { kind: 'exponential', baseDelayMs: 1000, maxDelayMs: 30_000 } })
export class OrderTask implements DurableTaskHandler<OrderParams, OrderResult> {
  private readonly logger = new Logger(OrderTask.name);

  constructor(
    private readonly settings: OrderSettings,
    private readonly stock: StockService,
    private readonly payments: PaymentService,
    private readonly mailer: MailerService,
  ) {}

  async run(params: OrderParams, ctx: TaskContext): Promise<OrderResult> {
    const orderId = ctx.taskId;
    // Code outside steps runs on every resumption: keep it cheap and free of effects, like this log.
    this.logger.log(`order ${orderId}: running (attempt ${ctx.attempt}; steps already done are skipped)`);

    await ctx.step('reserve-stock', () => this.stock.reserve(orderId, params.items));

    const payment = await ctx.step('charge-payment', async () => {
      try {
        return await this.payments.charge({
          idempotencyKey: orderId,
          orderId,
          amountCents: orderTotalCents(params.items),
          loseResponse: ctx.attempt === 1 && (params.failFirstPayment === true || this.settings.failFirstPayment),
        });
      } catch (error) {
        // Any other failure is retried with backoff; a refused payment never succeeds.
        if (error instanceof PaymentRefusedError) throw new NonRetryableError(error.message);
        throw error;
      }
    });

    // Fan-out: one child task per line item, picked in parallel; fan-in: the order suspends
    // (no worker slot held) until every line is picked. A retried order gets the same children back.
    const lines: Array<TaskHandle<Pick>> = [];
    for (const [line, item] of params.items.entries()) {
      lines.push(await ctx.spawn(`pick-line-${line}`, PickLineTask, { orderId, line, sku: item.sku, quantity: item.quantity }));
    }
    const picks = await ctx.joinAll(lines);

    let packed: PackedEvent;
    try {
      packed = await ctx.awaitEvent<PackedEvent>(packedEventName(orderId), { timeoutMs: this.settings.packTimeoutMs });
    } catch (error) {
      // Suspension and cancellation also arrive as throws here: let them through.
      if (!(error instanceof EventTimeoutError)) throw error;
      const refund = await ctx.step('refund-payment', () => this.payments.refund(orderId, orderId));
      await ctx.step('release-stock', () => this.stock.release(orderId));
      this.logger.warn(`order ${orderId}: not packed within ${this.settings.packTimeoutMs} ms, refunded and cancelled`);
      return { status: 'cancelled', reason: `not packed within ${this.settings.packTimeoutMs} ms`, refund };
    }

    await ctx.sleepFor('confirmation-delay', this.settings.confirmDelayMs);

    const email = await ctx.step('send-confirmation', () =>
      this.mailer.send({
        idempotencyKey: `${orderId}:confirmation`,
        orderId,
        to: params.customerEmail,
        subject: `Your order ${orderId} is on its way`,
      }),
    );
    this.logger.log(`order ${orderId}: confirmed`);
    return {
      status: 'confirmed',
      paymentId: payment.paymentId,
      amountCents: payment.amountCents,
      picks,
      packedAt: packed.packedAt,
      confirmationId: email.messageId,
    };
  }
}
