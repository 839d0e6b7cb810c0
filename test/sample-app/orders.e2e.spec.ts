/**
 * The sample app end to end: the real AppModule (TypeORM's DataSource shared with durable,
 * controllers, validation, the order task, the fake outside systems) on a test database,
 * driven over HTTP with fetch. The library is its source (jest maps 'nestjs-durable' to
 * lib/index.ts), so no build is needed.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type pg from 'pg';
import { AppModule } from '../../sample-app/src/app.module.js';
import { loadConfig } from '../../sample-app/src/config.js';
import { advanceClock, eventually, sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';
import { http } from './http.js';

const PACK_TIMEOUT_MS = 120_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ORDER = {
  customerEmail: 'ada@example.com',
  items: [
    { sku: 'BOOK-1', quantity: 2, unitPriceCents: 1250 },
    { sku: 'PEN-7', quantity: 1, unitPriceCents: 300 },
  ],
};
const TOTAL = 2 * 1250 + 300;

interface Running {
  app: INestApplication;
  baseUrl: string;
}

async function boot(options: Parameters<typeof AppModule.forRoot>[0]): Promise<Running> {
  const app = await NestFactory.create(AppModule.forRoot(options), {
    logger: process.env.DURABLE_TEST_LOGS ? ['log', 'warn', 'error'] : false,
    abortOnError: false,
  });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return { app, baseUrl: `http://127.0.0.1:${address.port}` };
}

function actions(order: { activity: Array<{ action: string }> }): string[] {
  return order.activity.map((entry) => entry.action);
}

describe('sample app over HTTP', () => {
  let db: TestDatabase;
  let sql: pg.Pool;
  let running: Running;
  let base: string;

  const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
    http(base, method, path, body, headers);

  async function createOrder(body: unknown = ORDER, headers?: Record<string, string>): Promise<string> {
    const res = await api('POST', '/orders', body, headers);
    expect(res.status).toBe(202);
    return res.body.id as string;
  }

  /**
   * Until the order waits to be packed: reserved, charged, every line picked, suspended. (A child's
   * completion wakes the order in the same transaction, so an order still sleeping once all its
   * lines are completed is past its join.)
   */
  async function untilAwaitingPacking(id: string) {
    return eventually(async () => {
      const { body } = await api('GET', `/orders/${id}`);
      const picked = body.lines?.length === ORDER.items.length && body.lines.every((line: { state: string }) => line.state === 'completed');
      return body.state === 'sleeping' && picked && actions(body).includes('payment.charge') && body;
    }, 20_000, `order ${id} to wait for packing`);
  }

  async function untilFinished(id: string) {
    return eventually(async () => {
      const { body } = await api('GET', `/orders/${id}`);
      return ['completed', 'failed', 'cancelled'].includes(body.state) && body;
    }, 20_000, `order ${id} to finish`);
  }

  async function payments(orderId: string) {
    const { rows } = await sql.query('select idempotency_key, amount_cents, state from sample.payments where order_id = $1', [orderId]);
    return rows;
  }

  /** Order tasks (their pick-line children are counted by the fan-out test). */
  async function taskCount(): Promise<number> {
    const { rows } = await sql.query(`select count(*)::int as n from durable.tasks where name = 'order'`);
    return rows[0].n as number;
  }

  async function orderRowCount(): Promise<number> {
    const { rows } = await sql.query('select count(*)::int as n from sample.orders');
    return rows[0].n as number;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    sql = sqlPool(db.url);
    running = await boot({ databaseUrl: db.url, packTimeoutMs: PACK_TIMEOUT_MS, confirmDelayMs: 200, failFirstPayment: false, pollIntervalMs: 200 });
    base = running.baseUrl;
  }, 60_000);

  afterAll(async () => {
    await running?.app.close();
    await sql?.end();
    await db?.drop();
  });

  it('happy path: 202 with the id, packed, confirmed; each outside call made once', async () => {
    const res = await api('POST', '/orders', ORDER);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ id: expect.stringMatching(UUID), created: true });
    const id = res.body.id as string;
    expect(res.headers.get('location')).toBe(`/orders/${id}`);

    await untilAwaitingPacking(id);
    const packed = await api('POST', `/orders/${id}/packed`);
    expect(packed).toMatchObject({ status: 202, body: { id, event: `packed:${id}` } });

    const order = await untilFinished(id);
    expect(order).toMatchObject({
      id, state: 'completed', attempts: 1, customerEmail: ORDER.customerEmail, totalCents: TOTAL, items: ORDER.items,
      result: {
        status: 'confirmed', paymentId: expect.stringMatching(/^pay_\d+$/), amountCents: TOTAL,
        packedAt: expect.any(String), confirmationId: expect.stringMatching(/^msg_\d+$/),
      },
    });
    expect(order.error).toBeUndefined();
    expect(actions(order)).toEqual(['stock.reserve', 'payment.charge', 'warehouse.pick', 'warehouse.pick', 'email.send']);
    expect(await payments(id)).toEqual([{ idempotency_key: id, amount_cents: TOTAL, state: 'charged' }]);
    const emails = await sql.query('select recipient from sample.emails where order_id = $1', [id]);
    expect(emails.rows).toEqual([{ recipient: ORDER.customerEmail }]);
  });

  it('fan-out: one pick-line child per line item, joined; GET /orders/:id shows each child', async () => {
    const items = [
      { sku: 'BOOK-1', quantity: 2, unitPriceCents: 1250 },
      { sku: 'PEN-7', quantity: 1, unitPriceCents: 300 },
      { sku: 'MUG-3', quantity: 4, unitPriceCents: 800 },
    ];
    const id = await createOrder({ ...ORDER, items });
    await api('POST', `/orders/${id}/packed`);
    const order = await untilFinished(id);
    expect(order.state).toBe('completed');

    // The children, from durable's listTasks({ parentTaskId }), by line: ids, states, results.
    const picks = order.result.picks as Array<{ line: number; sku: string; quantity: number; pickId: string }>;
    expect(picks).toEqual(items.map((item, line) => ({ line, sku: item.sku, quantity: item.quantity, pickId: expect.stringMatching(/^pick_\d+$/) })));
    expect(order.lines).toEqual(items.map((item, line) => ({
      taskId: expect.stringMatching(UUID), line, sku: item.sku, state: 'completed', attempts: 1, result: picks[line],
    })));
    const children = await sql.query(
      `select id, name, parent_task_id, state, (params->>'line')::int as line from durable.tasks where parent_task_id = $1 order by line`, [id],
    );
    expect(children.rows).toEqual(order.lines.map((line: { taskId: string; line: number }) => ({
      id: line.taskId, name: 'pick-line', parent_task_id: id, state: 'completed', line: line.line,
    })));
    // Each line picked once, by its own child; the order's join checkpoint holds the results in line order.
    const pickRows = await sql.query('select line, sku, quantity from sample.picks where order_id = $1 order by line', [id]);
    expect(pickRows.rows).toEqual(items.map((item, line) => ({ line, sku: item.sku, quantity: item.quantity })));
    expect(actions(order).filter((action) => action === 'warehouse.pick')).toHaveLength(items.length);
    const join = await sql.query(`select name, value from durable.checkpoints where task_id = $1 and name like 'joinAll:%'`, [id]);
    expect(join.rows).toEqual([{ name: `joinAll:${order.lines[0].taskId}`, value: { results: picks } }]);
    // An order's children are not orders.
    expect((await api('GET', `/orders/${order.lines[0].taskId}`)).status).toBe(404);
    expect((await api('GET', '/orders?limit=100')).body.orders.map((listed: { id: string }) => listed.id)).not.toContain(order.lines[0].taskId);
  });

  it('retry path: the payment step fails once and is retried; the stock step is not re-run; one charge', async () => {
    const id = await createOrder({ ...ORDER, failFirstPayment: true });
    // Emitted before the order waits for it: the event is a latch, the order still gets it.
    expect((await api('POST', `/orders/${id}/packed`)).status).toBe(202);

    const order = await untilFinished(id);
    expect(order).toMatchObject({ state: 'completed', attempts: 2, result: { status: 'confirmed', amountCents: TOTAL } });
    expect(actions(order)).toEqual(['stock.reserve', 'payment.charge', 'payment.charge', 'warehouse.pick', 'warehouse.pick', 'email.send']);
    expect(order.activity[1].detail).toMatchObject({ outcome: 'charged', simulated: 'response lost' });
    expect(order.activity[2].detail).toMatchObject({ outcome: 'replayed', paymentId: order.activity[1].detail.paymentId });
    expect(order.result.paymentId).toBe(order.activity[1].detail.paymentId);
    expect(await payments(id)).toEqual([{ idempotency_key: id, amount_cents: TOTAL, state: 'charged' }]);

    // In durable's rows: attempt 1 failed with the gateway error; the stock checkpoint is attempt 1's.
    const runs = await sql.query(`select attempt, state, error->>'name' as error from durable.runs where task_id = $1 order by attempt`, [id]);
    expect(runs.rows).toEqual([
      { attempt: 1, state: 'failed', error: 'PaymentGatewayError' },
      { attempt: 2, state: 'completed', error: null },
    ]);
    const checkpoints = await sql.query(
      `select name, attempt from durable.checkpoints where task_id = $1 and name like 'step:%' order by name`, [id],
    );
    expect(checkpoints.rows).toEqual([
      { name: 'step:charge-payment', attempt: 2 },
      { name: 'step:reserve-stock', attempt: 1 },
      { name: 'step:send-confirmation', attempt: 2 },
    ]);
  });

  it('a duplicate Idempotency-Key returns the same order and spawns nothing', async () => {
    const first = await api('POST', '/orders', ORDER, { 'Idempotency-Key': 'checkout-1' });
    expect(first).toMatchObject({ status: 202, body: { created: true } });
    const again = await api('POST', '/orders', ORDER, { 'Idempotency-Key': 'checkout-1' });
    expect(again).toMatchObject({ status: 202, body: { id: first.body.id, created: false } });
    expect(again.headers.get('idempotent-replayed')).toBe('true');

    // The same key with another body is a client bug: refused, nothing spawned.
    const tasksBefore = await taskCount();
    const other = await api('POST', '/orders', { ...ORDER, customerEmail: 'bob@example.com' }, { 'Idempotency-Key': 'checkout-1' });
    expect(other.status).toBe(422);
    expect(other.body.message).toMatch(/Idempotency-Key/);

    // Concurrent retries of one request: one order.
    const burst = await Promise.all(
      Array.from({ length: 5 }, () => api('POST', '/orders', ORDER, { 'Idempotency-Key': 'checkout-2' })),
    );
    expect(new Set(burst.map((res) => res.status))).toEqual(new Set([202]));
    expect(new Set(burst.map((res) => res.body.id)).size).toBe(1);
    expect(burst.filter((res) => res.body.created === true)).toHaveLength(1);
    expect(await taskCount()).toBe(tasksBefore + 1);
    const keyed = await sql.query(`select idempotency_key from durable.tasks where idempotency_key like 'orders:checkout-%' order by 1`);
    expect(keyed.rows).toEqual([{ idempotency_key: 'orders:checkout-1' }, { idempotency_key: 'orders:checkout-2' }]);

    // Without a key, two identical requests are two orders.
    expect(await createOrder()).not.toBe(await createOrder());
  });

  it('POST /orders inserts the order row and spawns its task in one transaction, under one id', async () => {
    const id = await createOrder(ORDER, { 'Idempotency-Key': 'row-1' });
    const row = await sql.query('select id, customer_email, total_cents, item_count from sample.orders where id = $1', [id]);
    expect(row.rows).toEqual([{ id, customer_email: ORDER.customerEmail, total_cents: TOTAL, item_count: ORDER.items.length }]);
    const task = await sql.query(
      `select name, params->>'customerEmail' as customer_email, idempotency_key from durable.tasks where id = $1`, [id],
    );
    expect(task.rows).toEqual([{ name: 'order', customer_email: ORDER.customerEmail, idempotency_key: 'orders:row-1' }]);
    // GET combines the row (through the app's repository) with the task's snapshot.
    expect((await api('GET', `/orders/${id}`)).body).toMatchObject({
      id, customerEmail: ORDER.customerEmail, totalCents: TOTAL, items: ORDER.items, state: expect.any(String),
    });
    // Every order task has its row and every row its task; every other task is a child of an order.
    const unmatched = await sql.query(
      `select count(*)::int as n from (select * from durable.tasks where name = 'order') t
       full join sample.orders o on o.id = t.id where t.id is null or o.id is null`,
    );
    expect(unmatched.rows).toEqual([{ n: 0 }]);
    const orphans = await sql.query(
      `select count(*)::int as n from durable.tasks t left join sample.orders o on o.id = t.parent_task_id
       where t.name <> 'order' and (t.name <> 'pick-line' or o.id is null)`,
    );
    expect(orphans.rows).toEqual([{ n: 0 }]);
  });

  it('an order row the database refuses rolls its spawn back: 500, and neither a task nor a row', async () => {
    const refused = 'refused@example.com';
    const tasksFor = async () =>
      (await sql.query(`select count(*)::int as n from durable.tasks where params->>'customerEmail' = $1`, [refused])).rows[0].n as number;
    const rowsFor = async () =>
      (await sql.query('select count(*)::int as n from sample.orders where customer_email = $1', [refused])).rows[0].n as number;
    // The insert of the order row fails after the spawn succeeded, inside the same transaction.
    await sql.query(`create function sample.refuse_test_order() returns trigger language plpgsql as $$
      begin raise exception 'orders from % are refused', new.customer_email; end $$`);
    await sql.query(`create trigger refuse_test_order before insert on sample.orders for each row
      when (new.customer_email = '${refused}') execute function sample.refuse_test_order()`);
    try {
      const tasksBefore = await taskCount();
      for (const headers of [{}, { 'Idempotency-Key': 'refused-1' }] as Array<Record<string, string>>) {
        const res = await api('POST', '/orders', { ...ORDER, customerEmail: refused }, headers);
        expect({ headers, status: res.status }).toEqual({ headers, status: 500 });
      }
      expect(await tasksFor()).toBe(0);
      expect(await rowsFor()).toBe(0);
      expect(await taskCount()).toBe(tasksBefore);
    } finally {
      await sql.query('drop trigger refuse_test_order on sample.orders');
      await sql.query('drop function sample.refuse_test_order()');
    }
    // The rolled-back spawn did not use up the key: once the row is accepted, the retry creates the order.
    const retried = await api('POST', '/orders', { ...ORDER, customerEmail: refused }, { 'Idempotency-Key': 'refused-1' });
    expect(retried).toMatchObject({ status: 202, body: { created: true } });
    expect(await tasksFor()).toBe(1);
    expect((await sql.query('select id from sample.orders where customer_email = $1', [refused])).rows).toEqual([{ id: retried.body.id }]);
  });

  it('an Idempotency-Key replay adds neither a task nor an order row', async () => {
    const first = await api('POST', '/orders', ORDER, { 'Idempotency-Key': 'replay-1' });
    expect(first).toMatchObject({ status: 202, body: { created: true } });
    const [tasksBefore, rowsBefore] = [await taskCount(), await orderRowCount()];

    const again = await api('POST', '/orders', ORDER, { 'Idempotency-Key': 'replay-1' });
    expect(again).toMatchObject({ status: 202, body: { id: first.body.id, created: false } });
    const burst = await Promise.all(Array.from({ length: 4 }, () => api('POST', '/orders', ORDER, { 'Idempotency-Key': 'replay-1' })));
    expect(burst.map((res) => [res.status, res.body.id, res.body.created])).toEqual(Array(4).fill([202, first.body.id, false]));
    expect((await api('POST', '/orders', { ...ORDER, customerEmail: 'bob@example.com' }, { 'Idempotency-Key': 'replay-1' })).status).toBe(422);

    expect(await taskCount()).toBe(tasksBefore);
    expect(await orderRowCount()).toBe(rowsBefore);
    expect((await sql.query('select customer_email from sample.orders where id = $1', [first.body.id])).rows).toEqual([
      { customer_email: ORDER.customerEmail },
    ]);

    // Concurrent first requests with a new key: one task and one row between them.
    const concurrent = await Promise.all(Array.from({ length: 5 }, () => api('POST', '/orders', ORDER, { 'Idempotency-Key': 'replay-2' })));
    expect(new Set(concurrent.map((res) => res.status))).toEqual(new Set([202]));
    expect(concurrent.filter((res) => res.body.created === true)).toHaveLength(1);
    expect(await taskCount()).toBe(tasksBefore + 1);
    expect(await orderRowCount()).toBe(rowsBefore + 1);
  });

  it('bad requests get 400 with a message, and nothing is spawned', async () => {
    await eventually(async () => (await sql.query(`select count(*)::int as n from durable.tasks where state in ('pending', 'running')`)).rows[0].n === 0, 20_000, 'quiet tasks');
    const tasksBefore = await taskCount();
    const activityBefore = (await sql.query('select count(*)::int as n from sample.activity')).rows[0].n as number;

    const cases: Array<[unknown, RegExp]> = [
      [{ items: ORDER.items }, /customerEmail must be an email/],
      [{ ...ORDER, customerEmail: 'not-an-email' }, /customerEmail must be an email/],
      [{ customerEmail: 'ada@example.com' }, /items/],
      [{ ...ORDER, items: [] }, /items must contain at least 1 elements/],
      [{ ...ORDER, items: [{ sku: 'A', quantity: 0, unitPriceCents: 100 }] }, /quantity must not be less than 1/],
      [{ ...ORDER, items: [{ sku: 'A', quantity: 1.5, unitPriceCents: 100 }] }, /quantity must be an integer/],
      [{ ...ORDER, items: [{ sku: '', quantity: 1, unitPriceCents: 100 }] }, /sku must be longer than or equal to 1/],
      [{ ...ORDER, items: [{ sku: 'A', quantity: 1 }] }, /unitPriceCents must be an integer/],
      [{ ...ORDER, failFirstPayment: 'yes' }, /failFirstPayment must be a boolean/],
      [{ ...ORDER, coupon: 'FREE' }, /property coupon should not exist/],
      ['{"customerEmail": ', /JSON/],
    ];
    for (const [body, message] of cases) {
      const res = await api('POST', '/orders', body);
      expect({ body, status: res.status }).toEqual({ body, status: 400 });
      expect(JSON.stringify(res.body.message)).toMatch(message);
    }
    const longKey = await api('POST', '/orders', ORDER, { 'Idempotency-Key': 'k'.repeat(256) });
    expect(longKey.status).toBe(400);
    expect(longKey.body.message).toMatch(/Idempotency-Key must be 1 to 255 characters/);

    expect(await taskCount()).toBe(tasksBefore);
    expect((await sql.query('select count(*)::int as n from sample.activity')).rows[0].n).toBe(activityBefore);
  });

  it('ids and queries are checked: 400 for a malformed id or query, 404 for an unknown order', async () => {
    expect((await api('GET', '/orders/not-a-uuid')).status).toBe(400);
    expect((await api('POST', '/orders/not-a-uuid/packed')).status).toBe(400);
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [['GET', ''], ['POST', '/packed'], ['POST', '/cancel']] as const) {
      const res = await api(method, `/orders/${unknown}${path}`);
      expect({ path, status: res.status, message: res.body.message }).toEqual({ path, status: 404, message: `order ${unknown} not found` });
    }
    expect((await api('GET', '/orders?limit=0')).status).toBe(400);
    expect((await api('GET', '/orders?state=shipped')).status).toBe(400);
    expect((await api('GET', '/orders?cursor=nope')).status).toBe(400);
  });

  it('GET /orders lists orders newest first, pages with a cursor and filters by state', async () => {
    const ids = [await createOrder(), await createOrder(), await createOrder()];
    const page1 = await api('GET', '/orders?limit=2');
    expect(page1.status).toBe(200);
    expect(page1.body.orders.map((order: { id: string }) => order.id)).toEqual([ids[2], ids[1]]);
    expect(page1.body.nextCursor).toBe(ids[1]);
    expect(page1.body.orders[0]).toMatchObject({ customerEmail: ORDER.customerEmail, totalCents: TOTAL, attempts: expect.any(Number) });
    const page2 = await api('GET', `/orders?limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.orders[0].id).toBe(ids[0]);

    const completed = await api('GET', '/orders?state=completed&limit=100');
    expect(completed.body.orders.length).toBeGreaterThanOrEqual(2);
    expect(completed.body.orders.every((order: { state: string }) => order.state === 'completed')).toBe(true);
  });

  it('cancel: refunds, releases the stock and stops the order; a finished order cannot be cancelled', async () => {
    const id = await createOrder();
    await untilAwaitingPacking(id);

    const res = await api('POST', `/orders/${id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, state: 'cancelled' });
    expect(actions(res.body)).toEqual(['stock.reserve', 'payment.charge', 'warehouse.pick', 'warehouse.pick', 'payment.refund', 'stock.release']);
    expect(await payments(id)).toEqual([{ idempotency_key: id, amount_cents: TOTAL, state: 'refunded' }]);
    const stock = await sql.query('select state from sample.stock_reservations where order_id = $1', [id]);
    expect(stock.rows).toEqual([{ state: 'released' }]);

    // Cancelling again changes nothing; packing a cancelled order is refused.
    const again = await api('POST', `/orders/${id}/cancel`);
    expect(again.body).toMatchObject({ id, state: 'cancelled' });
    expect(await payments(id)).toEqual([{ idempotency_key: id, amount_cents: TOTAL, state: 'refunded' }]);
    const packed = await api('POST', `/orders/${id}/packed`);
    expect(packed.status).toBe(409);
    expect(packed.body.message).toBe(`order ${id} is cancelled; nothing to pack`);

    // The order never continues: no email, still cancelled.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await api('GET', `/orders/${id}`)).body.state).toBe('cancelled');
    expect((await sql.query('select count(*)::int as n from sample.emails where order_id = $1', [id])).rows[0].n).toBe(0);

    const done = (await api('GET', '/orders?state=completed&limit=1')).body.orders[0].id as string;
    const refused = await api('POST', `/orders/${done}/cancel`);
    expect(refused.status).toBe(409);
    expect(refused.body.message).toBe(`order ${done} is completed; only an unfinished order can be cancelled`);
    expect((await api('GET', `/orders/${done}`)).body.state).toBe('completed');
  });

  it('timeout path: an order not packed in time is refunded and cancelled', async () => {
    const id = await createOrder();
    await untilAwaitingPacking(id);
    // No task may be running when the database clock jumps (their leases would expire).
    await eventually(async () => (await sql.query(`select count(*)::int as n from durable.tasks where state in ('pending', 'running')`)).rows[0].n === 0, 20_000, 'quiet tasks');
    await advanceClock(sql, PACK_TIMEOUT_MS + 1_000);

    const order = await untilFinished(id);
    expect(order).toMatchObject({
      state: 'completed',
      attempts: 1,
      result: {
        status: 'cancelled',
        reason: `not packed within ${PACK_TIMEOUT_MS} ms`,
        refund: { paymentId: expect.stringMatching(/^pay_\d+$/), state: 'refunded' },
      },
    });
    expect(actions(order)).toEqual(['stock.reserve', 'payment.charge', 'warehouse.pick', 'warehouse.pick', 'payment.refund', 'stock.release']);
    expect(await payments(id)).toEqual([{ idempotency_key: id, amount_cents: TOTAL, state: 'refunded' }]);
    expect((await api('POST', `/orders/${id}/packed`)).status).toBe(409);
    expect((await api('POST', `/orders/${id}/cancel`)).status).toBe(409);
  });
});

describe('sample app with FAIL_FIRST_PAYMENT=1', () => {
  let db: TestDatabase;
  let running: Running;

  beforeAll(async () => {
    db = await createTestDatabase();
    const config = loadConfig({ FAIL_FIRST_PAYMENT: '1', ORDER_CONFIRM_DELAY_MS: '0' });
    running = await boot({ ...config, databaseUrl: db.url, pollIntervalMs: 200 });
  }, 60_000);

  afterAll(async () => {
    await running?.app.close();
    await db?.drop();
  });

  it('every order retries its payment once, and is charged once', async () => {
    const created = await http(running.baseUrl, 'POST', '/orders', ORDER);
    const id = created.body.id as string;
    await http(running.baseUrl, 'POST', `/orders/${id}/packed`);
    const order = await eventually(async () => {
      const { body } = await http(running.baseUrl, 'GET', `/orders/${id}`);
      return body.state === 'completed' && body;
    }, 20_000, 'the order to complete');
    expect(order.attempts).toBe(2);
    expect(actions(order)).toEqual(['stock.reserve', 'payment.charge', 'payment.charge', 'warehouse.pick', 'warehouse.pick', 'email.send']);
    expect(order.activity.map((entry: { detail: { outcome?: string } }) => entry.detail.outcome)).toEqual([undefined, 'charged', 'replayed', undefined, undefined, undefined]);
  });

  it('mounts the dashboard at /durable with the orders in it (open: the sample has no guard)', async () => {
    const created = await http(running.baseUrl, 'POST', '/orders', ORDER);
    const id = created.body.id as string;
    const page = await fetch(`${running.baseUrl}/durable`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('data-base="/durable"');
    const list = await http(running.baseUrl, 'GET', '/durable/api/tasks?name=order');
    expect(list.body.tasks.map((task: { taskId: string }) => task.taskId)).toContain(id);
    const detail = await eventually(async () => {
      const { body } = await http(running.baseUrl, 'GET', `/durable/api/tasks/${id}`);
      return body.runs.length === 2 && body;
    }, 20_000, 'the order to retry its payment');
    expect(detail.task.taskId).toBe(id);
    expect(detail.runs[0].error.message).toBeTruthy();
  });
});
