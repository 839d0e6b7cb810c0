/**
 * DurableHealthIndicator in a Nest app with @nestjs/terminus: up with its figures; down when the
 * database stops answering (a TCP proxy cut), up again once it is back; down when a queue's
 * oldest pending task waited past the threshold; judged on the database alone without a worker.
 */
import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { TcpProxy } from '../../devkit/tcp-proxy.js';
import {
  DurableClient, DurableHealthIndicator, DurableModule, DurableTask, DurableWorkerMonitor, type DurableTaskHandler, type WorkerStatus,
} from '../../lib/index.js';
import { eventually, sleep as pause } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

@DurableTask({ name: 'noop' })
class NoopTask implements DurableTaskHandler<Record<string, never>, null> {
  async run() {
    return null;
  }
}

@Controller('health')
class HealthController {
  constructor(private readonly health: HealthCheckService, private readonly durable: DurableHealthIndicator) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.durable.isHealthy('durable', { maxPollAgeMs: 2000 })]);
  }

  lagging(): Promise<HealthCheckResult> {
    return this.health.check([() => this.durable.isHealthy('durable', { queues: ['parked'], maxOldestPendingAgeMs: 100 })]);
  }
}

async function outcome(check: () => Promise<HealthCheckResult>): Promise<HealthCheckResult> {
  try {
    return await check();
  } catch (error) {
    if (error instanceof ServiceUnavailableException) return error.getResponse() as HealthCheckResult;
    throw error;
  }
}

async function boot(url: string, worker: boolean) {
  const moduleRef = await Test.createTestingModule({
    imports: [TerminusModule, DurableModule.forRoot({ databaseUrl: url, queryTimeoutMs: 2000, worker: worker ? { pollIntervalMs: 100 } : false })],
    controllers: [HealthController],
    providers: [NoopTask],
  }).compile();
  moduleRef.useLogger(process.env.DURABLE_TEST_LOGS ? console : false);
  const app = await moduleRef.init();
  return { app, controller: app.get(HealthController) };
}

describe('DurableHealthIndicator with @nestjs/terminus', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let url: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    url = await proxy.listen(db.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await db?.drop();
  });

  it('is up with its figures, down while the database is unreachable, and up again after', async () => {
    const { app, controller } = await boot(url, true);
    try {
      await eventually(async () => (await outcome(() => controller.check())).status === 'ok', 10_000, 'up');
      const up = await outcome(() => controller.check());
      expect(up.details.durable).toMatchObject({
        status: 'up',
        worker: { state: 'running', concurrency: expect.any(Number), inFlight: 0, lastClaimAgeMs: expect.any(Number) },
        queues: [expect.objectContaining({ queue: 'default' })],
      });

      proxy.down();
      const down = await outcome(() => controller.check());
      expect(down.status).toBe('error');
      expect(down.details.durable.status).toBe('down');
      expect(String(down.details.durable.message)).toMatch(/database did not answer/);
      expect(String(down.details.durable.message)).not.toContain(new URL(db.url).password || 'never-a-password');

      proxy.restore();
      await eventually(async () => (await outcome(() => controller.check())).status === 'ok', 20_000, 'up again');
    } finally {
      proxy.restore();
      await app.close();
    }
  });

  it('is down when a checked queue\'s oldest pending task waited past the threshold, naming it', async () => {
    const { app, controller } = await boot(url, true);
    try {
      await app.get(DurableClient).spawn('noop', {}, { queue: 'parked' });
      await pause(300);
      const result = await outcome(() => controller.lagging());
      expect(result.status).toBe('error');
      expect(result.details.durable).toMatchObject({ status: 'down', queues: [expect.objectContaining({ queue: 'parked', pending: 1 })] });
      expect(String(result.details.durable.message)).toMatch(/"parked"/);
    } finally {
      await app.close();
    }
  });

  it('is down when the worker loop has not polled within maxPollAgeMs, or is stopping, unless every slot is busy', async () => {
    const { app } = await boot(url, false);
    try {
      const monitor = new DurableWorkerMonitor();
      const indicator = new DurableHealthIndicator(app.get(DurableClient), monitor);
      const status: WorkerStatus = { state: 'running', queues: ['default'], concurrency: 2, inFlight: 0, lastClaimAt: new Date(Date.now() - 10_000) };
      monitor.attach(() => status);
      const stale = (await indicator.isHealthy('durable', { maxPollAgeMs: 5000 })).durable;
      expect(stale).toMatchObject({ status: 'down', worker: { state: 'running', lastClaimAgeMs: expect.any(Number) } });
      expect(stale.message).toMatch(/has not polled for \d+ ms \(limit 5000\)/);
      status.inFlight = 2; // full: a full worker does not poll
      expect((await indicator.isHealthy('durable', { maxPollAgeMs: 5000 })).durable.status).toBe('up');
      status.inFlight = 0;
      status.lastClaimAt = new Date();
      expect((await indicator.isHealthy('durable', { maxPollAgeMs: 5000 })).durable.status).toBe('up');
      status.state = 'stopping';
      expect((await indicator.isHealthy()).durable).toMatchObject({ status: 'down', message: 'the worker is stopping' });
    } finally {
      await app.close();
    }
  });

  it('judges a producer-only process on the database alone', async () => {
    const { app, controller } = await boot(url, false);
    try {
      const result = await outcome(() => controller.check());
      expect(result.status).toBe('ok');
      expect(result.details.durable).toMatchObject({ status: 'up', worker: { state: 'none' } });
    } finally {
      await app.close();
    }
  });
});
