import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * An order, as the app records it (`sample.orders`). Its id is the id of the order's durable
 * task: `OrdersService.create` spawns the task and inserts this row in one transaction, so
 * there is never one without the other. The workflow's progress (state, attempts, result)
 * lives in the task; the business facts live here.
 */
@Entity({ schema: 'sample', name: 'orders' })
export class Order {
  /** The id of the order's `order` task. */
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ name: 'customer_email', type: 'text' })
  customerEmail!: string;

  @Column({ name: 'total_cents', type: 'integer' })
  totalCents!: number;

  @Column({ name: 'item_count', type: 'integer' })
  itemCount!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
