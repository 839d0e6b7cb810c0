import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ActivityLog } from './activity-log.service.js';

export interface ChargeRequest {
  /** One key per order: a second charge with the same key returns the first one. */
  idempotencyKey: string;
  orderId: string;
  amountCents: number;
  /** Fault injection: charge, then fail as if the gateway's answer had been lost. */
  loseResponse?: boolean;
}

export interface Charge {
  paymentId: string;
  amountCents: number;
}

export interface Refund {
  paymentId: string | null;
  state: 'refunded' | 'voided';
}

/** Thrown when the (fake) gateway's answer is lost; the charge may or may not have happened. */
export class PaymentGatewayError extends Error {
  override readonly name = 'PaymentGatewayError';
}

/** Thrown for a charge whose key was voided (the order was cancelled first): final. */
export class PaymentRefusedError extends Error {
  override readonly name = 'PaymentRefusedError';
}

/**
 * A fake payment provider with its own table. Like real ones (Stripe, Adyen) it takes an
 * idempotency key: a retried charge with the same key does not charge twice.
 */
@Injectable()
export class PaymentService {
  private readonly logger = new Logger(PaymentService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly activity: ActivityLog,
  ) {}

  async charge(request: ChargeRequest): Promise<Charge> {
    const charge = await this.dataSource.transaction(async (manager) => {
      const inserted: Array<{ id: string }> = await manager.query(
        `insert into sample.payments (idempotency_key, order_id, amount_cents, state)
         values ($1, $2, $3, 'charged') on conflict (idempotency_key) do nothing returning id`,
        [request.idempotencyKey, request.orderId, request.amountCents],
      );
      const [payment]: Array<{ id: string; state: string; amount_cents: number }> = await manager.query(
        'select id, state, amount_cents from sample.payments where idempotency_key = $1',
        [request.idempotencyKey],
      );
      const outcome = inserted.length === 1 ? 'charged' : payment.state === 'voided' ? 'refused (voided)' : 'replayed';
      await this.activity.record(manager, request.orderId, 'payment.charge', {
        outcome, paymentId: `pay_${payment.id}`, amountCents: payment.amount_cents,
        ...(request.loseResponse ? { simulated: 'response lost' } : {}),
      });
      return { payment, outcome };
    });
    if (charge.outcome === 'refused (voided)') {
      throw new PaymentRefusedError(`payment for order ${request.orderId} was voided; not charging`);
    }
    const paymentId = `pay_${charge.payment.id}`;
    this.logger.log(`order ${request.orderId}: ${charge.outcome} ${paymentId} (${charge.payment.amount_cents} cents)`);
    if (request.loseResponse) {
      this.logger.warn(`order ${request.orderId}: simulated failure, the answer for ${paymentId} is lost`);
      throw new PaymentGatewayError('payment gateway timed out (simulated by FAIL_FIRST_PAYMENT / failFirstPayment)');
    }
    return { paymentId, amountCents: charge.payment.amount_cents };
  }

  /** Refunds the charge made with this key; with no charge yet, voids the key instead. */
  async refund(idempotencyKey: string, orderId: string): Promise<Refund> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(
        `insert into sample.payments (idempotency_key, order_id, amount_cents, state, refunded_at)
         values ($1, $2, 0, 'voided', now())
         on conflict (idempotency_key) do update set state = 'refunded', refunded_at = now()
         where sample.payments.state = 'charged'`,
        [idempotencyKey, orderId],
      );
      const [payment]: Array<{ id: string; state: 'refunded' | 'voided' }> = await manager.query(
        'select id, state from sample.payments where idempotency_key = $1',
        [idempotencyKey],
      );
      const refund: Refund = { paymentId: payment.state === 'voided' ? null : `pay_${payment.id}`, state: payment.state };
      await this.activity.record(manager, orderId, 'payment.refund', { ...refund });
      this.logger.log(`order ${orderId}: payment ${refund.state}`);
      return refund;
    });
  }
}
