import type { ServerResponse } from 'node:http';
import {
  BadRequestException, Body, Controller, Get, Headers, HttpCode, HttpStatus, Param, ParseUUIDPipe, Post, Query, Res,
} from '@nestjs/common';
import { CreateOrderDto } from './create-order.dto.js';
import { ListOrdersQuery } from './list-orders.query.js';
import { OrdersService, type CreatedOrder, type OrderDetail, type OrderSummary } from './orders.service.js';

const MAX_IDEMPOTENCY_KEY = 255;

@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  /** Spawns an `order` task; answers before any of it runs. */
  @Post()
  @HttpCode(HttpStatus.ACCEPTED)
  async create(
    @Body() body: CreateOrderDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) response: ServerResponse,
  ): Promise<CreatedOrder> {
    if (idempotencyKey !== undefined && (idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY)) {
      throw new BadRequestException(`Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`);
    }
    const order = await this.orders.create(body, idempotencyKey);
    response.setHeader('Location', `/orders/${order.id}`);
    if (!order.created) response.setHeader('Idempotent-Replayed', 'true');
    return order;
  }

  @Get()
  list(@Query() query: ListOrdersQuery): Promise<{ orders: OrderSummary[]; nextCursor: string | null }> {
    return this.orders.list(query);
  }

  @Get(':id')
  get(@Param('id', ParseUUIDPipe) id: string): Promise<OrderDetail> {
    return this.orders.get(id);
  }

  /** The warehouse says the order is packed: emits `packed:<id>`. */
  @Post(':id/packed')
  @HttpCode(HttpStatus.ACCEPTED)
  packed(@Param('id', ParseUUIDPipe) id: string): Promise<{ id: string; event: string }> {
    return this.orders.markPacked(id);
  }

  @Post(':id/cancel')
  @HttpCode(HttpStatus.OK)
  cancel(@Param('id', ParseUUIDPipe) id: string): Promise<OrderDetail> {
    return this.orders.cancel(id);
  }
}
