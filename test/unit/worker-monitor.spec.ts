/**
 * DurableWorkerMonitor: the worker's status (or 'none'), and observers that hear its events; an
 * observer that throws is logged and disturbs neither the worker nor the other observers.
 */
import type { DurableLogger } from '../../lib/engine/support/logger.js';
import { DurableWorkerMonitor, type ObservedRun, type WorkerObserver, type WorkerStatus } from '../../lib/engine/worker/worker-monitor.js';

const run: ObservedRun = { taskId: 't1', runId: 'r1', attempt: 1, queue: 'default', taskName: 'send', workerId: 'w1', epoch: 1, headers: {} };

function recordingLogger() {
  const warnings: string[] = [];
  const logger: DurableLogger = { log: () => undefined, warn: (message) => warnings.push(message), error: () => undefined };
  return { logger, warnings };
}

describe('DurableWorkerMonitor status', () => {
  it("is 'none' with nothing in flight without a worker", () => {
    expect(new DurableWorkerMonitor().status()).toEqual({ state: 'none', queues: [], concurrency: 0, inFlight: 0 });
  });

  it('hands out a copy, so a caller cannot change the state of the next answer', () => {
    const monitor = new DurableWorkerMonitor();
    monitor.status().state = 'running';
    expect(monitor.status().state).toBe('none');
  });

  it('does not let one caller change the queues other monitors report', () => {
    const tampered = new DurableWorkerMonitor().status().queues;
    tampered.push('tampered');
    try {
      expect(new DurableWorkerMonitor().status().queues).toEqual([]);
    } finally {
      tampered.pop();
    }
  });

  it("returns the attached worker's status, asked afresh each time", () => {
    const monitor = new DurableWorkerMonitor();
    let inFlight = 1;
    monitor.attach((): WorkerStatus => ({ state: 'running', workerId: 'w1', queues: ['default'], concurrency: 4, inFlight }));
    expect(monitor.status()).toEqual({ state: 'running', workerId: 'w1', queues: ['default'], concurrency: 4, inFlight: 1 });
    inFlight = 3;
    expect(monitor.status().inFlight).toBe(3);
  });
});

describe('DurableWorkerMonitor observers', () => {
  it('tells every observer, with the arguments of the event', () => {
    const monitor = new DurableWorkerMonitor();
    const heard: unknown[][] = [];
    monitor.observe({ onStep: (r, step) => heard.push(['first', r, step]) });
    monitor.observe({ onStep: (r, step) => heard.push(['second', r, step]), onComplete: (r, ms) => heard.push(['complete', r.runId, ms]) });
    monitor.emit('onStep', run, { name: 'step:a', durationMs: 5 });
    monitor.emit('onComplete', run, 12);
    monitor.emit('onClaim', run); // nobody listens: nothing happens
    expect(heard).toEqual([
      ['first', run, { name: 'step:a', durationMs: 5 }],
      ['second', run, { name: 'step:a', durationMs: 5 }],
      ['complete', 'r1', 12],
    ]);
  });

  it('stops telling an observer once it unsubscribed', () => {
    const monitor = new DurableWorkerMonitor();
    const claims: string[] = [];
    const unsubscribe = monitor.observe({ onClaim: (r) => claims.push(`a:${r.runId}`) });
    monitor.observe({ onClaim: (r) => claims.push(`b:${r.runId}`) });
    monitor.emit('onClaim', run);
    unsubscribe();
    monitor.emit('onClaim', { ...run, runId: 'r2' });
    expect(claims).toEqual(['a:r1', 'b:r1', 'b:r2']);
  });

  it('logs an observer that throws, and still tells the others', () => {
    const { logger, warnings } = recordingLogger();
    const monitor = new DurableWorkerMonitor(logger);
    const failures: unknown[] = [];
    const thrower: WorkerObserver = {
      onFailure: () => {
        throw new Error('dashboard down, see postgres://app:s3cret@db/prod');
      },
    };
    monitor.observe(thrower);
    monitor.observe({ onFailure: (_r, error) => failures.push(error) });
    const cause = new Error('handler failed');
    expect(() => monitor.emit('onFailure', run, cause)).not.toThrow();
    expect(failures).toEqual([cause]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^a worker observer threw in onFailure: dashboard down/);
    expect(warnings[0]).not.toContain('s3cret');
  });

  it('survives a throwing observer without a logger, and a thrown non-Error', () => {
    const monitor = new DurableWorkerMonitor();
    const leases: string[] = [];
    monitor.observe({
      onLeaseLost: () => {
        throw 'plain string';
      },
    });
    monitor.observe({ onLeaseLost: (_r, reason) => leases.push(reason) });
    expect(() => monitor.emit('onLeaseLost', run, 'lease-lost')).not.toThrow();
    expect(leases).toEqual(['lease-lost']);
  });
});

describe('DurableWorkerMonitor aroundRun', () => {
  it('runs the execution once inside every observer\'s aroundRun, nested in the order they were added', async () => {
    const monitor = new DurableWorkerMonitor();
    const order: string[] = [];
    monitor.observe({ aroundRun: async (_r, execute) => { order.push('a:in'); const v = await execute(); order.push('a:out'); return v; } });
    monitor.observe({ onClaim: () => undefined }); // no aroundRun: skipped
    monitor.observe({ aroundRun: async (_r, execute) => { order.push('b:in'); const v = await execute(); order.push('b:out'); return v; } });
    let calls = 0;
    await expect(monitor.around(run, async () => { calls += 1; order.push('run'); return 'done'; })).resolves.toBe('done');
    expect(calls).toBe(1);
    expect(order).toEqual(['b:in', 'a:in', 'run', 'a:out', 'b:out']);
  });

  it('runs the execution without an observer whose aroundRun throws before calling it, and logs it', async () => {
    const { logger, warnings } = recordingLogger();
    const monitor = new DurableWorkerMonitor(logger);
    monitor.observe({ aroundRun: () => { throw new Error('tracer broken'); } });
    let calls = 0;
    await expect(monitor.around(run, async () => { calls += 1; return 7; })).resolves.toBe(7);
    expect(calls).toBe(1);
    expect(warnings).toEqual([expect.stringContaining('tracer broken')]);
  });

  it('passes the execution\'s own rejection through', async () => {
    const monitor = new DurableWorkerMonitor();
    monitor.observe({ aroundRun: (_r, execute) => execute() });
    await expect(monitor.around(run, async () => { throw new Error('handler failed'); })).rejects.toThrow('handler failed');
  });
});
