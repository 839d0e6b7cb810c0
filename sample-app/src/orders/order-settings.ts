/** The tunables of the order workflow (from ORDER_PACK_TIMEOUT_MS, ORDER_CONFIRM_DELAY_MS, FAIL_FIRST_PAYMENT). */
export class OrderSettings {
  constructor(
    /** How long an order waits for `packed:<orderId>` before it is refunded and cancelled. */
    readonly packTimeoutMs: number,
    /** The pause between packing and the confirmation email. */
    readonly confirmDelayMs: number,
    /** Make the first attempt of every payment step fail (besides the per-order request flag). */
    readonly failFirstPayment: boolean,
  ) {}
}
