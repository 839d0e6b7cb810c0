/**
 * DurableDashboardModule without a browser: its options are checked up front, it mounts at the
 * given path (a global prefix included in its links), its JSON answers bad input with 400 and an
 * unknown task with 404, and with no guard it is open (as the README says).
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DurableClient, DurableModule, InvalidArgumentError } from '../../lib/index.js';
import { DurableDashboardModule } from '../../lib/dashboard/index.js';
import { mountedAt } from '../../lib/dashboard/assets/dashboard.shell.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

describe('DurableDashboardModule options', () => {
  it.each([
    [{ path: 'has space' }, /dashboard path/],
    [{ path: '/a/../<b>' }, /dashboard path/],
    [{ path: '' }, /dashboard path/],
    [{ path: '/a/../b' }, /dashboard path/],
    [{ sampleIntervalMs: 5 }, /sampleIntervalMs/],
    [{ guard: { allow: true } as never }, /guard/],
  ])('refuses %j with a message that says what to fix', (options, message) => {
    expect(() => DurableDashboardModule.register(options)).toThrow(InvalidArgumentError);
    expect(() => DurableDashboardModule.register(options)).toThrow(message);
  });

  it('finds where it is mounted from the page URL, global prefix and all', () => {
    expect(mountedAt('/durable', 'durable')).toBe('/durable');
    expect(mountedAt('/durable/', 'durable')).toBe('/durable');
    expect(mountedAt('/durable/tasks?state=failed', 'durable')).toBe('/durable');
    expect(mountedAt('/api/v1/ops/durable/tasks/0b4c0f5e-3b0e-4f55-9d1a-0f3d1a2b3c4d', 'ops/durable')).toBe('/api/v1/ops/durable');
    expect(mountedAt('/weird', 'durable')).toBe('/durable');
  });
});

describe('DurableDashboardModule over HTTP (Express, no guard)', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    const moduleRef = await Test.createTestingModule({
      imports: [DurableModule.forRoot({ databaseUrl: db.url, worker: false }), DurableDashboardModule.register({ path: '/ops/durable/' })],
    }).compile();
    moduleRef.useLogger(false);
    app = moduleRef.createNestApplication();
    app.setGlobalPrefix('api');
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}/api/ops/durable`;
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('serves its pages under the global prefix, with a strict content security policy', async () => {
    const response = await fetch(`${base}/tasks`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await response.text();
    expect(html).toContain('data-base="/api/ops/durable"');
    expect(html).toContain('src="/api/ops/durable/assets/dashboard.js"');
    expect((await fetch(`${base}/assets/dashboard.js`)).headers.get('content-type')).toContain('javascript');
  });

  it('answers its JSON reads, 400 for bad input and 404 for an unknown task', async () => {
    const { taskId } = await app.get(DurableClient).spawn('nobody-runs-this', { a: 1 }, { queue: 'idle' });
    const page = await read(`${base}/api/tasks?queue=idle`);
    expect(page).toEqual({ tasks: [expect.objectContaining({ taskId, state: 'pending', waitingFor: expect.objectContaining({ reason: 'noWorker' }) })], nextCursor: null });
    const detail = await read(`${base}/api/tasks/${taskId}`);
    expect(detail.task.params).toEqual({ a: 1 });
    expect(detail.runs).toHaveLength(1);
    const queues = await read(`${base}/api/queues`);
    expect(queues.queues).toEqual([expect.objectContaining({ queue: 'idle', pending: 1 })]);
    expect((await fetch(`${base}/api/tasks?state=bogus`)).status).toBe(400);
    expect((await fetch(`${base}/api/tasks?cursor=not-a-uuid`)).status).toBe(400);
    expect((await fetch(`${base}/api/tasks/not-a-uuid`)).status).toBe(400);
    expect((await fetch(`${base}/api/tasks/00000000-0000-4000-8000-000000000000`)).status).toBe(404);
    expect((await fetch(`${base}/api/tasks/00000000-0000-4000-8000-000000000000/watch`)).status).toBe(404);
    const retry = await fetch(`${base}/api/tasks/${taskId}/retry`, { method: 'POST', headers: { 'x-durable-dashboard': '1' } });
    expect(retry.status).toBe(400); // a pending task cannot be retried
  });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON of the dashboard's routes, checked by the expectations
async function read(url: string): Promise<any> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return response.json();
}

describe('DurableDashboardModule live updates at shutdown', () => {
  let db: TestDatabase;
  beforeAll(async () => { db = await createTestDatabase(); });
  afterAll(() => db?.drop());

  it('streams a task over SSE, and ends the stream when the app closes (an open tab does not hold the server open)', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [DurableModule.forRoot({ databaseUrl: db.url, worker: false }), DurableDashboardModule.register()],
    }).compile();
    moduleRef.useLogger(false);
    const app = moduleRef.createNestApplication();
    let closed = false;
    try {
      await app.listen(0, '127.0.0.1');
      const { taskId } = await app.get(DurableClient).spawn('nobody-runs-this', {}, { queue: 'idle' });
      const port = (app.getHttpServer().address() as { port: number }).port;
      const response = await fetch(`http://127.0.0.1:${port}/durable/api/tasks/${taskId}/watch`);
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      const reader = response.body!.getReader();
      let first = '';
      while (!first.includes('\n\n', first.indexOf('data:'))) first += new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain('event: task');
      expect(first).toContain(`"taskId":"${taskId}"`);
      // The task never finishes: only the shutdown can end this stream.
      await app.close();
      closed = true;
      let done = false;
      while (!done) done = (await reader.read()).done;
      expect(done).toBe(true);
    } finally {
      if (!closed) await app.close();
    }
  });
});
