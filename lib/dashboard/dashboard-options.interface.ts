import type { CanActivate, DynamicModule, ForwardReference, Type } from '@nestjs/common';

/** Options of `DurableDashboardModule.register`. */
export interface DurableDashboardOptions {
  /** Where the dashboard is mounted in the app's HTTP server (pages, JSON, live updates). @default '/durable' */
  path?: string;
  /**
   * A Nest guard (a `CanActivate` class or instance) that every route of the dashboard passes:
   * pages, assets, JSON, live updates and actions. A class is instantiated in the dashboard's
   * module: list the modules its dependencies come from in `imports`.
   * @default none: the dashboard is open to anyone who can reach the app
   */
  guard?: Type<CanActivate> | CanActivate;
  /** Modules the guard's dependencies are provided by. @default [] */
  imports?: Array<Type<unknown> | DynamicModule | Promise<DynamicModule> | ForwardReference>;
  /**
   * How often the dashboard samples `client.stats()` for the queue page's throughput and lag
   * chart (an in-memory ring of the last hour, per process). @default 15000
   */
  sampleIntervalMs?: number;
}

export interface ResolvedDashboardOptions {
  /** Without slashes at either end, e.g. `durable` or `admin/durable`. */
  route: string;
  sampleIntervalMs: number;
}
