import { Injectable, Logger } from '@nestjs/common';
import { SampleDatabase } from '../database/sample-database.js';
import type { OrderItem } from '../orders/order.types.js';
import { ActivityLog } from './activity-log.service.js';

export interface StockReservation {
  orderId: string;
  state: 'reserved' | 'released';
}

/** A fake warehouse: reservations keyed by order, so a repeated call changes nothing. */
@Injectable()
export class StockService {
  private readonly logger = new Logger(StockService.name);

  constructor(
    private readonly database: SampleDatabase,
    private readonly activity: ActivityLog,
  ) {}

  async reserve(orderId: string, items: OrderItem[]): Promise<StockReservation> {
    return this.database.transaction(async (client) => {
      // A reservation released before it arrived (the order was cancelled meanwhile) stays released.
      await client.query(
        `insert into sample.stock_reservations (order_id, items, state, reserved_at)
         values ($1, $2, 'reserved', now()) on conflict (order_id) do nothing`,
        [orderId, JSON.stringify(items)],
      );
      const { rows } = await client.query<{ state: StockReservation['state'] }>(
        'select state from sample.stock_reservations where order_id = $1',
        [orderId],
      );
      const state = rows[0]!.state;
      await this.activity.record(client, orderId, 'stock.reserve', { items: items.length, state });
      this.logger.log(`order ${orderId}: ${state === 'reserved' ? `reserved ${items.length} item line(s)` : 'already released'}`);
      return { orderId, state };
    });
  }

  async release(orderId: string): Promise<StockReservation> {
    return this.database.transaction(async (client) => {
      // Releasing what was never reserved leaves a tombstone, so a late reservation is refused.
      await client.query(
        `insert into sample.stock_reservations (order_id, items, state, released_at)
         values ($1, '[]', 'released', now())
         on conflict (order_id) do update set state = 'released', released_at = now()
         where sample.stock_reservations.state = 'reserved'`,
        [orderId],
      );
      await this.activity.record(client, orderId, 'stock.release', {});
      this.logger.log(`order ${orderId}: stock released`);
      return { orderId, state: 'released' };
    });
  }
}
