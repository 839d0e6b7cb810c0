import {
  context, metrics, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Meter, type Span, type SpanContext, type Tracer,
} from '@opentelemetry/api';
import type { DurableClient } from '../engine/client/durable-client.js';
import type { SpawnHook } from '../engine/client/spawn-hooks.js';
import type { DurableWorkerMonitor, ObservedRun, WorkerObserver } from '../engine/worker/worker-monitor.js';
import { ATTR, METRIC, SPAN } from './telemetry-names.js';

export interface DurableTelemetryOptions {
  /** @default trace.getTracer('nestjs-durable') (a no-op until an SDK registers a provider) */
  tracer?: Tracer;
  /** @default metrics.getMeter('nestjs-durable') (a no-op until an SDK registers a provider) */
  meter?: Meter;
  /** The queues whose lag (`durable.queue.lag`) is reported. @default every queue */
  lagQueues?: string[];
}

/**
 * Hooks OpenTelemetry onto a client (spawns) and a worker monitor (runs and steps); returns the
 * function that unhooks it. Spans: `durable.spawn` (producer) in the caller's context, whose
 * W3C trace context goes into the task's headers (`traceparent`, `tracestate`); `durable.run`
 * (consumer), one per execution, child of the spawn's context and linked to the previous
 * execution of the same task (whichever process ran it: each execution's trace context is kept
 * in `tasks.last_execution`, one batched statement per group of executions, only while spans
 * are recorded); `durable.step`, child of its run.
 * Metrics: tasks started, retried, completed, failed; step duration; queue lag.
 */
export function instrumentDurable(client: DurableClient, monitor: DurableWorkerMonitor, options: DurableTelemetryOptions = {}): () => void {
  const tracer = options.tracer ?? trace.getTracer('nestjs-durable');
  const meter = options.meter ?? metrics.getMeter('nestjs-durable');
  const started = meter.createCounter(METRIC.started, { description: 'Tasks whose first attempt started' });
  const retried = meter.createCounter(METRIC.retried, { description: 'Attempts after the first that started' });
  const completed = meter.createCounter(METRIC.completed, { description: 'Tasks completed' });
  const failed = meter.createCounter(METRIC.failed, { description: 'Attempts that failed (retried or final)' });
  const stepDuration = meter.createHistogram(METRIC.stepDuration, { unit: 'ms', description: 'Duration of steps that ran (not replayed)' });
  const lag = meter.createObservableGauge(METRIC.queueLag, { unit: 'ms', description: 'Wait of the oldest due pending task per queue' });
  const observeLag = async (result: { observe(value: number, attributes?: Attributes): void }) => {
    const stats = await client.stats().catch(() => []);
    for (const s of stats) {
      if (options.lagQueues && !options.lagQueues.includes(s.queue)) continue;
      result.observe(s.oldestPendingAgeMs ?? 0, { [ATTR.destination]: s.queue });
    }
  };
  lag.addCallback(observeLag);

  const runs = new Map<string, { span: Span; linked: Promise<void> }>();
  const key = (run: ObservedRun) => `${run.runId}:${run.epoch}`;
  const common = (run: ObservedRun): Attributes => ({
    [ATTR.system]: 'nestjs-durable', [ATTR.destination]: run.queue, [ATTR.messageId]: run.taskId,
    [ATTR.taskId]: run.taskId, [ATTR.taskName]: run.taskName, [ATTR.attempt]: run.attempt, [ATTR.runId]: run.runId,
  });

  const spawnHook: SpawnHook = {
    beforeSpawn({ taskName, queue, child }) {
      const headers: Record<string, string> = {};
      if (child) {
        // ctx.spawn: the child joins the trace of the parent's execution (the active context).
        propagation.inject(context.active(), headers);
        return { headers };
      }
      const span = tracer.startSpan(SPAN.spawn, {
        kind: SpanKind.PRODUCER,
        attributes: { [ATTR.system]: 'nestjs-durable', [ATTR.destination]: queue, [ATTR.operationType]: 'create', [ATTR.operationName]: 'spawn', [ATTR.taskName]: taskName },
      }, context.active());
      propagation.inject(trace.setSpan(context.active(), span), headers);
      return {
        headers,
        after(outcome) {
          if ('error' in outcome) {
            span.recordException(outcome.error as Error);
            span.setStatus({ code: SpanStatusCode.ERROR, message: (outcome.error as Error)?.message });
          } else {
            span.setAttributes({ [ATTR.messageId]: outcome.taskId, [ATTR.taskId]: outcome.taskId, [ATTR.created]: outcome.created });
          }
          span.end();
        },
      };
    },
  };

  const observer: WorkerObserver = {
    aroundRun(run, execute) {
      const parent = propagation.extract(ROOT_CONTEXT, run.headers as Record<string, string>);
      const span = tracer.startSpan(SPAN.run, {
        kind: SpanKind.CONSUMER,
        attributes: { ...common(run), [ATTR.operationType]: 'process', [ATTR.operationName]: 'run', [ATTR.execution]: run.epoch, [ATTR.worker]: run.workerId },
      }, parent);
      // The previous execution (in whatever process) left its span's context on the task.
      const linked = !span.isRecording() ? Promise.resolve()
        : client.swapLastExecution(run.taskId, toTraceparent(span.spanContext())).then((previous) => {
          const before = fromTraceparent(previous);
          if (before) span.addLink({ context: before, attributes: { [ATTR.linkReason]: 'previous-execution' } });
        }, () => undefined);
      runs.set(key(run), { span, linked });
      return context.with(trace.setSpan(parent, span), execute);
    },
    onClaim(run) {
      const attributes = { [ATTR.destination]: run.queue, [ATTR.taskName]: run.taskName };
      if (run.epoch === 1 && run.attempt === 1) started.add(1, attributes);
      else if (run.epoch === 1) retried.add(1, attributes);
    },
    onStep(run, step) {
      const parent = runs.get(key(run))?.span;
      const end = Date.now();
      const span = tracer.startSpan(SPAN.step, {
        startTime: end - step.durationMs,
        attributes: { [ATTR.taskId]: run.taskId, [ATTR.taskName]: run.taskName, [ATTR.stepName]: step.name, [ATTR.replayed]: false },
      }, parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT);
      span.end(end);
      stepDuration.record(step.durationMs, { [ATTR.destination]: run.queue, [ATTR.taskName]: run.taskName, [ATTR.stepName]: step.name });
    },
    onStepReplayed(run, step) {
      const parent = runs.get(key(run))?.span;
      tracer.startSpan(SPAN.step, {
        attributes: { [ATTR.taskId]: run.taskId, [ATTR.taskName]: run.taskName, [ATTR.stepName]: step.name, [ATTR.replayed]: true },
      }, parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT).end();
    },
    onComplete(run) {
      completed.add(1, { [ATTR.destination]: run.queue, [ATTR.taskName]: run.taskName });
    },
    onFailure(run, error) {
      const name = (error as Error)?.name ?? 'Error';
      failed.add(1, { [ATTR.destination]: run.queue, [ATTR.taskName]: run.taskName, [ATTR.errorType]: name });
      runs.get(key(run))?.span.recordException(error as Error);
    },
    onEnd(run, outcome) {
      const entry = runs.get(key(run));
      runs.delete(key(run));
      if (!entry) return;
      const { span, linked } = entry;
      span.setAttribute(ATTR.outcome, outcome);
      if (outcome === 'failed' || outcome === 'unrecorded' || outcome === 'lease-lost') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      const end = Date.now();
      // Ended once its link is known (the swap was sent when the execution started).
      void linked.finally(() => span.end(end));
    },
  };

  const removeHook = client.addSpawnHook(spawnHook);
  const removeObserver = monitor.observe(observer);
  return () => {
    removeHook();
    removeObserver();
    lag.removeCallback(observeLag);
    for (const { span } of runs.values()) span.end();
    runs.clear();
  };
}

function toTraceparent(span: SpanContext): string {
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

function fromTraceparent(text: string | null): SpanContext | undefined {
  const match = text ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(text) : null;
  return match ? { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16), isRemote: true } : undefined;
}
