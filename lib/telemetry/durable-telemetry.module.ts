import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DurableClient } from '../engine/client/durable-client.js';
import { DurableWorkerMonitor } from '../engine/worker/worker-monitor.js';
import { instrumentDurable, type DurableTelemetryOptions } from './durable-telemetry.js';

const OPTIONS = Symbol('DURABLE_TELEMETRY_OPTIONS');

/** Hooks OpenTelemetry onto the app's DurableClient and worker (see `instrumentDurable`). */
@Injectable()
export class DurableTelemetryHost implements OnModuleInit, OnApplicationShutdown {
  private stop: (() => void) | undefined;

  constructor(
    @Inject(DurableClient) private readonly client: DurableClient,
    @Inject(DurableWorkerMonitor) private readonly monitor: DurableWorkerMonitor,
    @Inject(OPTIONS) private readonly options: DurableTelemetryOptions,
  ) {}

  onModuleInit(): void {
    this.stop = instrumentDurable(this.client, this.monitor, this.options);
  }

  onApplicationShutdown(): void {
    this.stop?.();
  }
}

/** `imports: [DurableModule.forRoot(...), DurableTelemetryModule.forRoot()]`, from `nestjs-durable/telemetry`. */
@Module({})
export class DurableTelemetryModule {
  static forRoot(options: DurableTelemetryOptions = {}): DynamicModule {
    return {
      module: DurableTelemetryModule,
      providers: [{ provide: OPTIONS, useValue: options }, DurableTelemetryHost],
    };
  }
}
