import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

/** One call made to an outside system on behalf of an order. */
export interface Activity {
  at: string;
  action: string;
  detail: Record<string, unknown>;
}

/**
 * Records every call the fake outside systems receive, in the same transaction as its effect,
 * so `GET /orders/:id` shows what really ran: a retried step calls again, a replayed one does not.
 */
@Injectable()
export class ActivityLog {
  constructor(private readonly dataSource: DataSource) {}

  /** `manager`: the transaction of the call being recorded. */
  async record(manager: EntityManager, orderId: string, action: string, detail: Record<string, unknown>): Promise<void> {
    await manager.query('insert into sample.activity (order_id, action, detail) values ($1, $2, $3)', [
      orderId, action, JSON.stringify(detail),
    ]);
  }

  async forOrder(orderId: string): Promise<Activity[]> {
    const rows: Array<{ at: Date; action: string; detail: Record<string, unknown> }> = await this.dataSource.query(
      'select at, action, detail from sample.activity where order_id = $1 order by id',
      [orderId],
    );
    return rows.map((row) => ({ at: row.at.toISOString(), action: row.action, detail: row.detail }));
  }
}
