import { Logger, Module, ValidationPipe, type DynamicModule, type OnModuleDestroy } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { DurableModule } from 'nestjs-durable';
import { SampleDatabase } from './database/sample-database.js';
import { DurableErrorFilter } from './durable-error.filter.js';
import { OrderSettings } from './orders/order-settings.js';
import { OrderTask } from './orders/order.task.js';
import { OrdersController } from './orders/orders.controller.js';
import { OrdersService } from './orders/orders.service.js';
import { ActivityLog } from './shop/activity-log.service.js';
import { MailerService } from './shop/mailer.service.js';
import { PaymentService } from './shop/payment.service.js';
import { StockService } from './shop/stock.service.js';

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
  /** The first of the shutdown hooks: durable's worker drains right after. */
  onModuleDestroy(): void {
    new Logger('SampleApp').log('Shutting down: the worker stops claiming and lets running steps finish');
  }

  static forRoot(options: AppOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        DurableModule.forRoot({
          databaseUrl: options.databaseUrl,
          worker: {
            // Short enough that a task of a process killed with -9 is taken over within seconds
            // of a restart; every checkpoint renews it, and no step here runs for long.
            leaseMs: 30_000,
            shutdownTimeoutMs: 10_000,
            ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
          },
        }),
      ],
      controllers: [OrdersController],
      providers: [
        { provide: OrderSettings, useValue: new OrderSettings(options.packTimeoutMs, options.confirmDelayMs, options.failFirstPayment) },
        { provide: SampleDatabase, useFactory: () => new SampleDatabase(options.databaseUrl) },
        { provide: APP_PIPE, useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }) },
        { provide: APP_FILTER, useClass: DurableErrorFilter },
        ActivityLog,
        StockService,
        PaymentService,
        MailerService,
        OrdersService,
        OrderTask,
      ],
    };
  }
}
