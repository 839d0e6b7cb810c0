import { Controller, Module, UseGuards, type DynamicModule } from '@nestjs/common';
import { InvalidArgumentError } from '../errors/invalid-argument.error.js';
import { DashboardControllerBase } from './dashboard.controller.js';
import type { DurableDashboardOptions, ResolvedDashboardOptions } from './dashboard-options.interface.js';
import { DashboardStatsSampler } from './dashboard-stats.sampler.js';
import { DASHBOARD_OPTIONS } from './dashboard.constants.js';
import { DashboardStreams } from './dashboard-streams.js';

/**
 * `imports: [DurableModule.forRoot(...), DurableDashboardModule.register({ guard: AdminGuard })]`,
 * from `nestjs-durable/dashboard`: the web dashboard at `path` of the app's own HTTP server
 * (Express or Fastify), on the app's `DurableClient`. Every route passes `guard`.
 */
@Module({})
export class DurableDashboardModule {
  static register(options: DurableDashboardOptions = {}): DynamicModule {
    const resolved = resolveDashboardOptions(options);
    // A controller class per registration: its path and guard are decorator arguments.
    @Controller(resolved.route)
    class DurableDashboardController extends DashboardControllerBase {}
    if (options.guard) UseGuards(options.guard)(DurableDashboardController);
    return {
      module: DurableDashboardModule,
      imports: options.imports ?? [],
      controllers: [DurableDashboardController],
      providers: [{ provide: DASHBOARD_OPTIONS, useValue: resolved }, DashboardStatsSampler, DashboardStreams],
    };
  }
}

function resolveDashboardOptions(options: DurableDashboardOptions): ResolvedDashboardOptions {
  const path = options.path ?? '/durable';
  const segments = typeof path === 'string' ? path.split('/').filter((segment) => segment !== '') : [];
  if (typeof path !== 'string' || !/^\/?[A-Za-z0-9._~-]+(\/[A-Za-z0-9._~-]+)*\/?$/.test(path) || segments.some((segment) => /^\.+$/.test(segment))) {
    throw new InvalidArgumentError(`dashboard path must be a URL path of letters, digits, '.', '_', '~', '-' and '/', like '/durable'; got ${JSON.stringify(path)}`);
  }
  const sampleIntervalMs = options.sampleIntervalMs ?? 15_000;
  if (!Number.isInteger(sampleIntervalMs) || sampleIntervalMs < 100) {
    throw new InvalidArgumentError(`dashboard sampleIntervalMs must be an integer of at least 100 (ms); got ${String(sampleIntervalMs)}`);
  }
  if (options.guard !== undefined && typeof options.guard !== 'function' && typeof (options.guard as { canActivate?: unknown }).canActivate !== 'function') {
    throw new InvalidArgumentError('dashboard guard must be a CanActivate class or an object with a canActivate method');
  }
  return { route: path.replace(/^\/+|\/+$/g, ''), sampleIntervalMs };
}
