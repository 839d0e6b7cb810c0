/**
 * Span, metric and attribute names. `messaging.*` follow the OpenTelemetry semantic conventions
 * for messaging (a task is a message, its queue the destination); `durable.*` are this
 * package's own.
 */
export const SPAN = { spawn: 'durable.spawn', run: 'durable.run', step: 'durable.step' } as const;

export const ATTR = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  messageId: 'messaging.message.id',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  errorType: 'error.type',
  taskId: 'durable.task.id',
  taskName: 'durable.task.name',
  attempt: 'durable.task.attempt',
  runId: 'durable.run.id',
  execution: 'durable.run.execution',
  worker: 'durable.worker.id',
  outcome: 'durable.run.outcome',
  created: 'durable.spawn.created',
  stepName: 'durable.step.name',
  replayed: 'durable.step.replayed',
  linkReason: 'durable.link.reason',
} as const;

export const METRIC = {
  started: 'durable.tasks.started',
  retried: 'durable.tasks.retried',
  completed: 'durable.tasks.completed',
  failed: 'durable.tasks.failed',
  stepDuration: 'durable.step.duration',
  queueLag: 'durable.queue.lag',
} as const;
