import { Logger, Module, ValidationPipe, type DynamicModule, type OnModuleDestroy } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DurableModule } from 'nestjs-durable';
import { DurableDashboardModule } from 'nestjs-durable/dashboard';
import { DataSource } from 'typeorm';
import { SampleSchema } from './database/sample-schema.js';
import { DurableErrorFilter } from './durable-error.filter.js';
import { OrderSettings } from './orders/order-settings.js';
import { Order } from './orders/order.entity.js';
import { OrderTask } from './orders/order.task.js';
import { PickLineTask } from './orders/pick-line.task.js';
import { OrdersController } from './orders/orders.controller.js';
import { OrderEventsController } from './orders/order-events.controller.js';
import { OrdersService } from './orders/orders.service.js';
import { ActivityLog } from './shop/activity-log.service.js';
import { MailerService } from './shop/mailer.service.js';
import { PaymentService } from './shop/payment.service.js';
import { StockService } from './shop/stock.service.js';
import { WarehouseService } from './shop/warehouse.service.js';

export interface AppOptions {
  databaseUrl: string;
  packTimeoutMs: number;
  confirmDelayMs: number;
  failFirstPayment: boolean;
  /** Worker tuning (tests poll faster). */
  pollIntervalMs?: number;
}

@Module({})
export class AppModule implements OnModuleDestroy {
  /**
   * Closing drains durable's worker first (it stops claiming and lets running steps finish,
   * which may still use every service here), then runs the app's onModuleDestroy hooks like this
   * one, closes the HTTP server, and last TypeOrmModule destroys the DataSource.
   */
  onModuleDestroy(): void {
    new Logger('SampleApp').log('Shutting down: the worker has stopped claiming and let running steps finish; closing the database');
  }

  static forRoot(options: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        // The app's one DataSource: its repositories and queries, and durable's too.
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: options.databaseUrl,
          applicationName: 'nestjs-durable-sample-app',
          entities: [Order],
          // The tables are created by SampleSchema (durable's by its own migrations), not synchronized.
          synchronize: false,
          // An unreachable database fails the start in seconds rather than after 10 retries.
          retryAttempts: 2,
          retryDelay: 1000,
        }),
        TypeOrmModule.forFeature([Order]),
        // Durable reuses that DataSource: no second pool, and `spawn(..., { manager })` joins the
        // app's transactions. It never destroys the DataSource; TypeOrmModule does, at close,
        // after durable's worker has drained.
        DurableModule.forRootAsync({
          inject: [DataSource],
          useFactory: (dataSource: DataSource) => ({
            dataSource,
            worker: {
              // Short enough that a task of a process killed with -9 is taken over within seconds
              // of a restart; every checkpoint renews it, and no step here runs for long.
              leaseMs: 30_000,
              shutdownTimeoutMs: 10_000,
              ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
            },
          }),
        }),
        // The operators' dashboard at http://localhost:3000/durable: the orders' tasks, their
        // timelines, live updates, retry and cancel. No guard here, so it is open to anyone who
        // reaches this port; a real app passes its admin guard: register({ guard: AdminGuard }).
        DurableDashboardModule.register({ path: '/durable' }),
      ],
      controllers: [OrdersController, OrderEventsController],
      providers: [
        { provide: OrderSettings, useValue: new OrderSettings(options.packTimeoutMs, options.confirmDelayMs, options.failFirstPayment) },
        { provide: APP_PIPE, useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }) },
        { provide: APP_FILTER, useClass: DurableErrorFilter },
        SampleSchema,
        ActivityLog,
        StockService,
        PaymentService,
        MailerService,
        WarehouseService,
        OrdersService,
        OrderTask,
        PickLineTask,
      ],
    };
  }
}
