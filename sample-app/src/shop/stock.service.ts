import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
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
    private readonly dataSource: DataSource,
    private readonly activity: ActivityLog,
  ) {}

  async reserve(orderId: string, items: OrderItem[]): Promise<StockReservation> {
    return this.dataSource.transaction(async (manager) => {
      // A reservation released before it arrived (the order was cancelled meanwhile) stays released.
      await manager.query(
        `insert into sample.stock_reservations (order_id, items, state, reserved_at)
         values ($1, $2, 'reserved', now()) on conflict (order_id) do nothing`,
        [orderId, JSON.stringify(items)],
      );
      const [reservation]: Array<{ state: StockReservation['state'] }> = await manager.query(
        'select state from sample.stock_reservations where order_id = $1',
        [orderId],
      );
      const { state } = reservation;
      await this.activity.record(manager, orderId, 'stock.reserve', { items: items.length, state });
      this.logger.log(`order ${orderId}: ${state === 'reserved' ? `reserved ${items.length} item line(s)` : 'already released'}`);
      return { orderId, state };
    });
  }

  async release(orderId: string): Promise<StockReservation> {
    return this.dataSource.transaction(async (manager) => {
      // Releasing what was never reserved leaves a tombstone, so a late reservation is refused.
      await manager.query(
        `insert into sample.stock_reservations (order_id, items, state, released_at)
         values ($1, '[]', 'released', now())
         on conflict (order_id) do update set state = 'released', released_at = now()
         where sample.stock_reservations.state = 'reserved'`,
        [orderId],
      );
      await this.activity.record(manager, orderId, 'stock.release', {});
      this.logger.log(`order ${orderId}: stock released`);
      return { orderId, state: 'released' };
    });
  }
}
