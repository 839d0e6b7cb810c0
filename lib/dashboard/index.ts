// `nestjs-durable/dashboard`: the web dashboard (the package root does not load it).
export { DurableDashboardModule } from './dashboard.module.js';
export type { DurableDashboardOptions } from './dashboard-options.interface.js';
export type { DashboardQueues, DashboardTaskPage } from './dashboard.controller.js';
export type { StatsSample, QueueSample } from './dashboard-stats.sampler.js';
