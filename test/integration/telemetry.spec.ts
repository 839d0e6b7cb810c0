/**
 * Telemetry with the OpenTelemetry SDK's in-memory exporters. Traces: an HTTP request span in
 * this process spawns a task; a worker in a second process (a real child process) runs it
 * through two steps to a sleep and exits, a third process runs the rest: every span is in the
 * request's trace,
 * `durable.spawn` is the request's child, each execution's `durable.run` is the spawn's child
 * (the second one linked to the first), steps are children of their execution and the replayed
 * ones say so. Metrics: started, retried, completed, failed, step duration, queue lag.
 * Without an SDK, spawning adds no headers.
 */
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SpanKind, trace } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { DurableClient, DurableModule, DurableTask, type DurableTaskHandler, type TaskContext } from '../../lib/index.js';
import { DurableTelemetryModule } from '../../lib/telemetry/index.js';
import { registerInMemoryOtel, toJson, type SpanJson } from '../fixtures/telemetry-otel.js';
import { eventually, startApp } from '../helpers/durable-app.js';
import { runFixture } from '../helpers/run-fixture.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

@DurableTask({ name: 'metered', queue: 'metered', retry: { kind: 'fixed', delayMs: 50 } })
class MeteredTask implements DurableTaskHandler<{ failOnce: boolean }, string> {
  async run(params: { failOnce: boolean }, ctx: TaskContext) {
    await ctx.step('one', () => 1);
    await ctx.step('two', () => 2);
    if (params.failOnce && ctx.attempt === 1) throw new Error('once');
    return 'ok';
  }
}

describe('telemetry', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('without an SDK, spawning adds no headers and nothing breaks', async () => {
    @Module({ imports: [DurableModule.forRoot({ databaseUrl: db.url, worker: false }), DurableTelemetryModule.forRoot()] })
    class Producer {}
    const app = await NestFactory.createApplicationContext(Producer, { logger: false });
    try {
      const client = app.get(DurableClient);
      const { taskId } = await client.spawn('anything', {}, { queue: 'parked', headers: { mine: 'x' } });
      expect((await client.getTask(taskId))!.headers).toEqual({ mine: 'x' });
    } finally {
      await app.close();
    }
  });

  it('one trace from an HTTP request through spawn, and runs and steps in other processes, across a sleep', async () => {
    const otel = registerInMemoryOtel();
    @Module({ imports: [DurableModule.forRoot({ databaseUrl: db.url, worker: false }), DurableTelemetryModule.forRoot()] })
    class Producer {}
    const app = await NestFactory.createApplicationContext(Producer, { logger: false });
    let request!: SpanJson;
    let taskId!: string;
    try {
      const tracer = trace.getTracer('test-http');
      await tracer.startActiveSpan('GET /orders', { kind: SpanKind.SERVER }, async (span) => {
        ({ taskId } = await app.get(DurableClient).spawn('traced', { n: 20 }, { queue: 'traced', headers: { mine: 'kept' } }));
        span.end();
      });
      const headers = (await app.get(DurableClient).getTask(taskId))!.headers;
      expect(headers).toEqual({ traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/), mine: 'kept' });
      const local = otel.exporter.getFinishedSpans().map(toJson);
      request = local.find((s) => s.name === 'GET /orders')!;
      const spawn = local.find((s) => s.name === 'durable.spawn')!;
      expect(spawn).toMatchObject({
        kind: SpanKind.PRODUCER, traceId: request.traceId, parentSpanId: request.spanId,
        attributes: { 'messaging.system': 'nestjs-durable', 'messaging.destination.name': 'traced', 'messaging.operation.type': 'create',
          'messaging.message.id': taskId, 'durable.task.id': taskId, 'durable.task.name': 'traced', 'durable.spawn.created': true },
      });
      expect(headers.traceparent).toBe(`00-${spawn.traceId}-${spawn.spanId}-01`);

      // The execution before the sleep in one worker process, the one after it in another.
      const spansOf = async (until: string) => {
        const worker = await runFixture('telemetry-worker.ts', [db.url, taskId, until], 60_000);
        const line = worker.stdout.split('\n').find((l) => l.startsWith('SPANS '));
        if (!line) throw new Error(`the worker printed no spans: ${worker.stderr}`);
        return JSON.parse(line.slice('SPANS '.length)) as SpanJson[];
      };
      const first = await spansOf('sleeping');
      const second = await spansOf('completed');
      const runsOf = (spans: SpanJson[]) => spans.filter((s) => s.name === 'durable.run');
      expect(runsOf(first)).toHaveLength(1);
      expect(runsOf(second)).toHaveLength(1);
      const runs = [...runsOf(first), ...runsOf(second)];
      const steps = [...first, ...second].filter((s) => s.name === 'durable.step');
      for (const run of runs) {
        expect(run).toMatchObject({
          kind: SpanKind.CONSUMER, traceId: request.traceId, parentSpanId: spawn.spanId,
          attributes: { 'durable.task.id': taskId, 'durable.task.name': 'traced', 'messaging.destination.name': 'traced',
            'durable.task.attempt': 1, 'messaging.operation.type': 'process' },
        });
      }
      expect(runs.map((r) => r.attributes['durable.run.outcome'])).toEqual(['suspended', 'completed']);
      expect(runs.map((r) => r.attributes['durable.run.execution'])).toEqual([1, 2]);
      expect(runs[0].links).toEqual([]);
      expect(runs[1].links).toEqual([{ traceId: request.traceId, spanId: runs[0].spanId, attributes: { 'durable.link.reason': 'previous-execution' } }]);
      const stepsOf = (run: SpanJson) => steps.filter((s) => s.parentSpanId === run.spanId)
        .map((s) => `${s.attributes['durable.step.name'] as string}${s.attributes['durable.step.replayed'] ? ' (replayed)' : ''}`).sort();
      expect(stepsOf(runs[0])).toEqual(['compute', 'fetch']);
      expect(stepsOf(runs[1])).toEqual(['compute (replayed)', 'fetch (replayed)', 'store']);
      expect(steps.every((s) => s.traceId === request.traceId)).toBe(true);
    } finally {
      await app.close();
      await otel.shutdown();
    }
  });

  it('counts tasks started, retried, completed and failed, step durations and queue lag', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    @Module({
      imports: [
        DurableModule.forRoot({ databaseUrl: db.url, worker: { queues: ['metered'], pollIntervalMs: 50 } }),
        DurableTelemetryModule.forRoot({ meter: provider.getMeter('test') }),
      ],
      providers: [MeteredTask],
    })
    class Worker {}
    const t = await startApp(db.url, [], { worker: false }); // a producer for a pending task on another queue
    const app = await NestFactory.createApplicationContext(Worker, { logger: false });
    await app.init();
    try {
      const client = app.get(DurableClient);
      await t.client.spawn('never', {}, { queue: 'lagging' });
      const ids = await Promise.all([client.spawn(MeteredTask, { failOnce: false }), client.spawn(MeteredTask, { failOnce: true })]);
      await Promise.all(ids.map(({ taskId }) => client.awaitResult(taskId, { timeoutMs: 20_000 })));
      await eventually(async () => {
        await reader.forceFlush();
        const all = exporter.getMetrics().flatMap((m) => m.scopeMetrics.flatMap((s) => s.metrics));
        return all.some((m) => m.descriptor.name === 'durable.tasks.completed' && total(m) === 2);
      }, 10_000, 'the completions to be counted');
      const metrics = new Map<string, MetricData>();
      for (const m of exporter.getMetrics().at(-1)!.scopeMetrics.flatMap((s) => s.metrics)) metrics.set(m.descriptor.name, m);
      expect(total(metrics.get('durable.tasks.started')!)).toBe(2);
      expect(total(metrics.get('durable.tasks.retried')!)).toBe(1);
      expect(total(metrics.get('durable.tasks.completed')!)).toBe(2);
      expect(total(metrics.get('durable.tasks.failed')!)).toBe(1);
      expect(metrics.get('durable.tasks.failed')!.dataPoints[0].attributes).toMatchObject({ 'error.type': 'Error', 'durable.task.name': 'metered' });
      const durations = metrics.get('durable.step.duration')!;
      expect(durations.dataPoints.reduce((n, p) => n + (p.value as { count: number }).count, 0)).toBe(4); // 2 + 2 steps ran; replays are not timed
      const lag = metrics.get('durable.queue.lag')!;
      const lagging = lag.dataPoints.find((p) => p.attributes['messaging.destination.name'] === 'lagging');
      expect(lagging!.value).toBeGreaterThanOrEqual(0);
    } finally {
      await app.close();
      await t.close();
      await provider.shutdown();
    }
  });
});

function total(metric: MetricData): number {
  return metric.dataPoints.reduce((n, p) => n + (p.value as number), 0);
}
