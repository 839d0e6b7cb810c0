// `nestjs-durable/telemetry`: needs the optional peer @opentelemetry/api (the package root never loads it).
export { instrumentDurable, type DurableTelemetryOptions } from './durable-telemetry.js';
export { DurableTelemetryModule, DurableTelemetryHost } from './durable-telemetry.module.js';
export { ATTR as DURABLE_ATTRIBUTES, METRIC as DURABLE_METRICS, SPAN as DURABLE_SPANS } from './telemetry-names.js';
