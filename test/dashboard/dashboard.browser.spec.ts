/**
 * The dashboard in a real browser (Debian's headless Chromium driven by playwright-core), on a
 * running Nest HTTP app with a real worker and Postgres, on Express and on Fastify: a task that
 * fails is followed live, retried from its page and seen to complete live; params holding HTML
 * are shown as text; the guard refuses pages, JSON, live updates and actions; actions need the
 * dashboard's header and a same-origin request. The Express run also takes the screenshots in docs/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import playwright, { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { eventually } from '../../devkit/wait.js';
import { DurableClient } from '../../lib/index.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOCS = join(ROOT, 'docs');
const HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">';
const have = existsSync(CHROMIUM);
if (!have) console.warn(`dashboard browser spec SKIPPED: ${CHROMIUM} is missing (apt-get install chromium; CI installs it)`);

let browser: Browser;
beforeAll(async () => {
  if (!have) return;
  browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => { await browser?.close(); });

(have ? describe.each : describe.skip.each)([['express'], ['fastify']])('dashboard on %s', (platform) => {
  let db: TestDatabase;
  let app: ChildProcess;
  let client: DurableClient;
  let url: string;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    db = await createTestDatabase();
    [app, url] = await startApp(db.url, platform);
    url += '/durable';
    client = await DurableClient.connect({ databaseUrl: db.url });
    // A queue no worker polls: its lag grows through the suite (the queue page's line and oldest pending).
    for (let i = 0; i < 3; i++) await client.spawn('monthly-report', { month: i + 1 }, { queue: 'reports' });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await context.addCookies([{ name: 'dashboard-token', value: 'letmein', url }]);
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
  });

  afterAll(async () => {
    await context?.close();
    await client?.close();
    if (app && app.exitCode === null) {
      const exited = new Promise((resolve) => app.once('exit', resolve));
      app.kill('SIGTERM');
      await exited;
    }
    await db?.drop();
  });

  it('follows a failing task live, retries it from the page and sees it complete live', async () => {
    const { taskId } = await client.spawn('checkout', { order: 'A-1001' }, { queue: 'shop', maxAttempts: 1 });
    await page.goto(`${url}/tasks/${taskId}`);
    await page.locator('.live').waitFor();
    await page.evaluate(() => { (globalThis as unknown as { marker: number }).marker = 1; });
    await expectText(page, '#waiting', 'go-A-1001');
    // The charge step throws now: the page learns it from the live stream.
    await client.emitEvent('go-A-1001', null, { queue: 'shop' });
    await page.locator('#state', { hasText: 'failed' }).waitFor();
    await expectText(page, '#error', 'card declined: <b>insufficient funds</b>');
    expect(await page.locator('#error b').count()).toBe(0);
    await expectText(page, '#runs', 'Error: card declined');
    if (platform === 'express') await shoot(page, 'dashboard-task-failed.png');

    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('#retry').click();
    await page.locator('#state', { hasText: 'completed' }).waitFor();
    await expectText(page, '#result', '"charged": 42');
    // The same page all along: no reload, the live stream brought each change.
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1);
    expect((await client.getTask(taskId))?.state).toBe('completed');

    // Runs, checkpoints in order, children and the timeline are all on the page.
    expect(await page.locator('#runs tbody tr').count()).toBe(2);
    const names = await page.locator('#checkpoints tbody td.mono').allTextContents();
    expect(names.slice(0, 3)).toEqual(['step:reserve', 'sleep:cool-down', 'spawn:pack-a']);
    expect(names).toContain('step:charge');
    expect(await page.locator('ul.tree > li').count()).toBe(2);
    expect(await page.locator('#timeline rect.sleep').count()).toBe(1);
    expect(await page.locator('#timeline rect.step').count()).toBeGreaterThanOrEqual(2);
    await expectText(page, '#progress', '"done":3');
    if (platform === 'express') await shoot(page, 'dashboard-task.png');

    // Its children, as the list filtered by parent.
    await page.getByText('All children in the task list').click();
    await page.waitForURL(/parent=/);
    await page.locator('#tasks').waitFor();
    expect(await page.locator('#tasks tbody tr td:nth-child(2)').allTextContents()).toEqual(['pack', 'pack']);
  });

  it('cancels a waiting task from its page after a confirmation, and says what it waits for', async () => {
    const { taskId } = await client.spawn('await-payment', {}, { queue: 'shop' });
    await page.goto(`${url}/tasks/${taskId}`);
    await expectText(page, '#waiting', 'waiting for event "payment-confirmed"');
    page.once('dialog', (dialog) => void dialog.dismiss());
    await page.locator('#cancel').click();
    await page.waitForTimeout(200);
    expect((await client.getTask(taskId))?.state).not.toBe('cancelled');
    page.once('dialog', (dialog) => void dialog.accept());
    await page.locator('#cancel').click();
    await page.locator('#state', { hasText: 'cancelled' }).waitFor();
    expect((await client.getTask(taskId))?.state).toBe('cancelled');
  });

  it('shows params that hold HTML as text, and runs none of it', async () => {
    const { taskId } = await client.spawn('echo', { note: HOSTILE }, { queue: 'shop' });
    await client.awaitResult(taskId, { timeoutMs: 10_000 });
    await page.goto(`${url}/tasks/${taskId}`);
    await expectText(page, '#params', HOSTILE.replace(/"/g, '\\"'));
    await expectText(page, '#result', '<script>');
    expect(await page.locator('main script, main img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('lists tasks with filters, keyset pages and what each unfinished one waits for; shows the queues with their chart', async () => {
    const delayed = await client.spawn('echo', { later: true }, { queue: 'shop', delayMs: 3_600_000 });
    const awaiting = await client.spawn('await-payment', {}, { queue: 'shop' });
    // The list is drawn once per page load: load it once the task waits for its event.
    await eventually(async () => (await client.getTask(awaiting.taskId))?.state === 'sleeping', 10_000, 'the task to wait for its event');
    await page.goto(`${url}/tasks?queue=shop`);
    await expectText(page, `tr[data-task="${delayed.taskId}"]`, 'not to start before');
    await page.locator('tr[data-task] .waiting', { hasText: 'payment-confirmed' }).first().waitFor();
    await expectText(page, '#tasks', 'checkout');
    if (platform === 'express') await shoot(page, 'dashboard-tasks.png');

    await page.selectOption('select[name=state]', 'completed');
    await page.locator('form.filters button').click();
    await page.waitForURL(/state=completed/);
    await page.locator('#tasks').waitFor();
    const states = await page.locator('#tasks tbody .badge').allTextContents();
    expect(states.length).toBeGreaterThan(0);
    expect(new Set(states)).toEqual(new Set(['completed']));

    // Keyset paging: 60 more tasks make two pages of 50, with no task on both.
    for (let i = 0; i < 60; i++) await client.spawn('echo', { i }, { queue: 'shop', delayMs: 3_600_000 });
    await page.goto(`${url}/tasks?state=pending`);
    await page.locator('#tasks').waitFor();
    const first = await page.locator('#tasks tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task')));
    expect(first).toHaveLength(50);
    await page.locator('#next').click();
    await page.waitForURL(/cursor=/);
    await page.locator('#tasks').waitFor();
    const second = await page.locator('#tasks tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task')));
    expect(second.length).toBeGreaterThan(10);
    expect(second.filter((id) => first.includes(id))).toEqual([]);

    await page.goto(url);
    await expectText(page, '#queues tr[data-queue="shop"]', 'shop');
    expect(await page.locator('#queues tr[data-queue="reports"] td').last().textContent()).toMatch(/\d+(\.\d)? (ms|s)$/);
    // Samples every 300 ms: the tasks finished above are bars, the lag a line (the page redraws every 5 s).
    await page.locator('#throughput polyline.lag').waitFor({ state: 'attached' });
    expect(await page.locator('#throughput rect.rate').count()).toBeGreaterThan(0);
    if (platform === 'express') await shoot(page, 'dashboard-queues.png');
  });

  it('refuses every route to a request the guard refuses, with no data in the answer', async () => {
    const { taskId } = await client.spawn('echo', { secret: 'guarded-value' }, { queue: 'shop' });
    const stranger = await browser.newContext();
    try {
      const response = await (await stranger.newPage()).goto(`${url}/tasks/${taskId}`);
      expect(response?.status()).toBe(403);
      expect(await response?.text()).not.toContain('data-base');
    } finally {
      await stranger.close();
    }
    for (const path of ['', '/tasks', `/tasks/${taskId}`, '/assets/dashboard.js', '/api/queues', '/api/tasks', `/api/tasks/${taskId}`, `/api/tasks/${taskId}/watch`]) {
      const response = await fetch(`${url}${path}`);
      const body = await response.text();
      expect([path, response.status]).toEqual([path, 403]);
      expect(body).not.toContain(taskId);
      expect(body).not.toContain('guarded-value');
    }
    const post = await fetch(`${url}/api/tasks/${taskId}/cancel`, { method: 'POST', headers: { 'x-durable-dashboard': '1' } });
    expect(post.status).toBe(403);
    expect((await client.getTask(taskId))?.state).not.toBe('cancelled');
  });

  it('refuses an action without the dashboard header or from another origin, even with the guard passed', async () => {
    const { taskId } = await client.spawn('echo', { x: 1 }, { queue: 'shop', delayMs: 3_600_000 });
    const cookie = 'dashboard-token=letmein';
    const attempts: Array<Record<string, string>> = [
      { cookie },
      { cookie, 'x-durable-dashboard': '1', origin: 'https://evil.example' },
      { cookie, 'x-durable-dashboard': '1', 'sec-fetch-site': 'cross-site' },
    ];
    for (const headers of attempts) {
      const response = await fetch(`${url}/api/tasks/${taskId}/cancel`, { method: 'POST', headers });
      expect(response.status).toBe(403);
    }
    expect((await client.getTask(taskId))?.state).toBe('pending');
    const allowed = await fetch(`${url}/api/tasks/${taskId}/cancel`, { method: 'POST', headers: { cookie, 'x-durable-dashboard': '1', origin: new URL(url).origin } });
    expect(allowed.status).toBe(200);
    expect((await client.getTask(taskId))?.state).toBe('cancelled');
  });
});

async function expectText(page: Page, selector: string, text: string): Promise<void> {
  await page.locator(selector, { hasText: text }).first().waitFor();
  expect(await page.locator(selector).first().textContent()).toContain(text);
}

async function shoot(page: Page, file: string): Promise<void> {
  mkdirSync(DOCS, { recursive: true });
  await page.screenshot({ path: join(DOCS, file), fullPage: true });
}

/** The app of test/fixtures/dashboard-app.ts in a process of its own; resolves with it and its URL. */
function startApp(databaseUrl: string, platform: string): Promise<[ChildProcess, string]> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'test', 'fixtures', 'dashboard-app.ts'), databaseUrl, platform], {
    cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the dashboard app did not start:\n${output}`)); }, 30_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening (\S+)/.exec(output);
      if (match) { clearTimeout(timer); resolve([child, match[1]]); }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); if (process.env.DURABLE_TEST_LOGS) process.stderr.write(chunk); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the dashboard app exited (${code}):\n${output}`)); });
  });
}
