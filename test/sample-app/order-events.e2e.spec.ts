/**
 * The sample app's `GET /orders/:id/events` (Server-Sent Events from a Nest `@Sse()` handler on
 * `client.watch`): the stream is read over HTTP until the order completes, and it ends by itself.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../../sample-app/src/app.module.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { http } from './http.js';

const ORDER = { customerEmail: 'ada@example.com', items: [{ sku: 'BOOK-1', quantity: 1, unitPriceCents: 1250 }] };

interface OrderEvent {
  id: string;
  state: string;
  attempts: number;
  progress: unknown;
  result?: { status: string };
}

/** Reads an SSE response to its end; `onEvent` sees each event's parsed data as it arrives. */
async function readEvents(response: Response, onEvent: (event: OrderEvent) => void): Promise<OrderEvent[]> {
  const events: OrderEvent[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
      if (!data) continue;
      const event = JSON.parse(data) as OrderEvent;
      events.push(event);
      onEvent(event);
    }
  }
  return events;
}

describe('sample app: GET /orders/:id/events', () => {
  let db: TestDatabase;
  let app: INestApplication;
  let base: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await NestFactory.create(
      AppModule.forRoot({ databaseUrl: db.url, packTimeoutMs: 120_000, confirmDelayMs: 200, failFirstPayment: false, pollIntervalMs: 200 }),
      { logger: process.env.DURABLE_TEST_LOGS ? ['log', 'warn', 'error'] : false, abortOnError: false },
    );
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it('streams the order\'s snapshots until it completes, then ends the stream', async () => {
    const created = await http(base, 'POST', '/orders', ORDER);
    expect(created.status).toBe(202);
    const id = created.body.id as string;
    const response = await fetch(`${base}/orders/${id}/events`, { headers: { accept: 'text/event-stream' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    let packed = false;
    const events = await readEvents(response, (event) => {
      // Waiting to be packed: the warehouse says it is.
      if (event.state === 'sleeping' && !packed) {
        packed = true;
        void http(base, 'POST', `/orders/${id}/packed`);
      }
    });
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events.every((event) => event.id === id)).toBe(true);
    expect(['pending', 'running']).toContain(events[0].state);
    expect(events.map((event) => event.state)).toContain('sleeping');
    expect(events.at(-1)).toMatchObject({ state: 'completed', attempts: 1, result: { status: 'confirmed' } });
    expect(events.slice(0, -1).every((event) => event.state !== 'completed')).toBe(true);
    const order = await http(base, 'GET', `/orders/${id}`);
    expect(order.body.state).toBe('completed');
  });

  it('answers 404 for an unknown order and 400 for a malformed id', async () => {
    const unknown = await http(base, 'GET', '/orders/00000000-0000-4000-8000-000000000000/events');
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toMatch(/not found/);
    expect((await fetch(`${base}/orders/nope/events`)).status).toBe(400);
  });
});
