import type { Pick } from '../shop/warehouse.service.js';

/** The params of an `order` task, as spawned by `POST /orders`. */
export interface OrderParams {
  customerEmail: string;
  items: OrderItem[];
  /** Fault injection: the payment step fails on its first attempt. */
  failFirstPayment?: boolean;
}

export interface OrderItem {
  sku: string;
  quantity: number;
  unitPriceCents: number;
}

/** The result of an `order` task. */
export type OrderResult =
  | { status: 'confirmed'; paymentId: string; amountCents: number; picks: Pick[]; packedAt: string; confirmationId: string }
  | { status: 'cancelled'; reason: string; refund: { paymentId: string | null; state: 'refunded' | 'voided' } };

/** The payload of the `packed:<orderId>` event. */
export interface PackedEvent {
  packedAt: string;
}

/** Orders are `order` tasks; the task id is the order id. */
export const ORDER_TASK = 'order';

/** The child task that picks one line of an order (one per line item, spawned by the order). */
export const PICK_LINE_TASK = 'pick-line';

export function packedEventName(orderId: string): string {
  return `packed:${orderId}`;
}

export function orderTotalCents(items: OrderItem[]): number {
  return items.reduce((sum, item) => sum + item.quantity * item.unitPriceCents, 0);
}
