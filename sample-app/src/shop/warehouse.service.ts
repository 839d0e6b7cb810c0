import { Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ActivityLog } from './activity-log.service.js';

export interface PickRequest {
  orderId: string;
  /** The line's index in the order's items. */
  line: number;
  sku: string;
  quantity: number;
}

export interface Pick {
  line: number;
  sku: string;
  quantity: number;
  pickId: string;
}

/** A fake warehouse floor: one pick per order line, keyed by (order, line), so a repeated call changes nothing. */
@Injectable()
export class WarehouseService {
  private readonly logger = new Logger(WarehouseService.name);

  constructor(
    private readonly dataSource: DataSource,
    private readonly activity: ActivityLog,
  ) {}

  async pick(request: PickRequest): Promise<Pick> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(
        `insert into sample.picks (order_id, line, sku, quantity) values ($1, $2, $3, $4)
         on conflict (order_id, line) do nothing`,
        [request.orderId, request.line, request.sku, request.quantity],
      );
      const [row]: Array<{ id: string }> = await manager.query('select id from sample.picks where order_id = $1 and line = $2', [
        request.orderId, request.line,
      ]);
      const pickId = `pick_${row.id}`;
      const { line, sku, quantity } = request;
      await this.activity.record(manager, request.orderId, 'warehouse.pick', { line, sku, quantity, pickId });
      this.logger.log(`order ${request.orderId}: line ${line} picked (${quantity} x ${sku}, ${pickId})`);
      return { line, sku, quantity, pickId };
    });
  }
}
