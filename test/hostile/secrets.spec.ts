/**
 * Secrets: however a connection fails (nothing listening, a malformed URL, an unknown host, a
 * wrong password, a password changed under a running app), the error's message, stack, `cause`
 * chain and every log line are free of the database password, in plain or percent-encoded form;
 * the error is a DurableError subclass whose message says what to fix.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import fc from 'fast-check';
import pg from 'pg';
import {
  DatabaseUnavailableError, DurableClient, DurableError, DurableModule, DurableTask, InvalidArgumentError,
  type DurableLogger, type DurableTaskHandler, type TaskContext,
} from '../../lib/index.js';
import { SEED, settle } from '../fixtures/hostile-values.js';
import { eventually, sleep, sqlPool } from '../helpers/durable-app.js';
import { adminUrl, createTestDatabase, serverChecksPasswords, type TestDatabase } from '../helpers/test-database.js';

const PASSWORD = 's3cr3t-Hostile/pw:@#%';

/** Every line any logger method was given, with all its arguments. */
class CapturingLogger implements DurableLogger, LoggerService {
  readonly lines: string[] = [];
  private capture = (...args: unknown[]) => {
    this.lines.push(args.map((arg) => (typeof arg === 'string' ? arg : inspect(arg, { depth: 8, showHidden: true }))).join(' '));
  };
  log = this.capture;
  warn = this.capture;
  error = this.capture;
  debug = this.capture;
  verbose = this.capture;
  fatal = this.capture;
}

/** The error, its stack, every own property, and the same for its `cause` chain and aggregated errors. */
function everythingOf(error: unknown, seen = new Set<unknown>()): string {
  if (error === null || typeof error !== 'object' || seen.has(error)) return String(error);
  seen.add(error);
  const parts = [String(error), (error as Error).stack ?? '', inspect(error, { depth: 8, showHidden: true })];
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined) parts.push(everythingOf(cause, seen));
  for (const inner of (error as { errors?: unknown[] }).errors ?? []) parts.push(everythingOf(inner, seen));
  return parts.join('\n');
}

/** The forms a password takes in a URL or a message. */
function formsOf(password: string): string[] {
  return [...new Set([password, encodeURIComponent(password), encodeURI(password), password.replaceAll('%', '%25')])].filter((form) => form.length >= 6);
}

function expectNoSecret(text: string, password: string, where: string): void {
  for (const form of formsOf(password)) {
    if (text.includes(form)) throw new Error(`${where} contains the password (${JSON.stringify(form)}):\n${text.slice(0, 2000)}`);
  }
}

function urlWith(password: string, host = '127.0.0.1:1', database = 'durable'): string {
  return `postgres://durable:${encodeURIComponent(password)}@${host}/${database}`;
}

const checksPasswords = await serverChecksPasswords();

@DurableTask({ name: 'secrets-task' })
class SecretsTask implements DurableTaskHandler<unknown, string> {
  async run(_params: unknown, ctx: TaskContext) {
    return ctx.taskId;
  }
}

// ==================================================================================================

describe('connection failures never reveal the password', () => {
  const failures: [string, string, typeof DatabaseUnavailableError | typeof InvalidArgumentError, RegExp][] = [
    ['nothing listening', urlWith(PASSWORD), DatabaseUnavailableError, /PostgreSQL is unreachable.*127\.0\.0\.1:1/],
    ['unknown host', urlWith(PASSWORD, 'nonexistent-host.invalid:5432'), DatabaseUnavailableError, /PostgreSQL is unreachable.*nonexistent-host\.invalid/],
    ['malformed URL (bad host)', `postgres://user:${encodeURIComponent(PASSWORD)}@[bad`, InvalidArgumentError, /databaseUrl is not a valid URL \(expected postgres:\/\/user:password@host:port\/database\)/],
    ['malformed URL (raw password)', `postgres://user:${PASSWORD}@127.0.0.1:1/durable`, InvalidArgumentError, /databaseUrl/],
    ['malformed URL (port out of range)', urlWith(PASSWORD, '127.0.0.1:99999'), InvalidArgumentError, /databaseUrl is not a valid URL/],
    ['malformed URL (bad percent-encoding)', 'postgres://user:s3cr3t-Hostile%ZZpw@127.0.0.1:1/durable', InvalidArgumentError, /databaseUrl is not a valid URL/],
  ];

  it.each(failures)('%s: DurableClient.connect rejects with the right DurableError, and nothing has the password', async (_what, databaseUrl, errorClass, message) => {
    const logger = new CapturingLogger();
    const result = await settle(() => DurableClient.connect({ databaseUrl, logger }));
    if (result.ok) await result.value.close();
    expect(result.ok).toBe(false);
    const error = (result as { error: Error }).error;
    expect(error).toBeInstanceOf(errorClass);
    expect(error).toBeInstanceOf(DurableError);
    expect(error.message).toMatch(message);
    const secret = databaseUrl.includes('%ZZ') ? 's3cr3t-Hostile%ZZpw' : PASSWORD;
    expectNoSecret(everythingOf(error), secret, 'the error');
    expectNoSecret(logger.lines.join('\n'), secret, 'the log');
  });

  it.each(failures)('%s: a Nest app fails to start with the right DurableError, and no log line has the password', async (_what, databaseUrl, errorClass) => {
    const logger = new CapturingLogger();
    const result = await settle(async () => {
      const moduleRef = await Test.createTestingModule({ imports: [DurableModule.forRoot({ databaseUrl })], providers: [SecretsTask] })
        .setLogger(logger)
        .compile();
      await moduleRef.close();
    });
    expect(result.ok).toBe(false);
    const error = (result as { error: Error }).error;
    expect(error).toBeInstanceOf(errorClass);
    const secret = databaseUrl.includes('%ZZ') ? 's3cr3t-Hostile%ZZpw' : PASSWORD;
    expectNoSecret(everythingOf(error), secret, 'the error');
    expectNoSecret(logger.lines.join('\n'), secret, 'the log');
  });

  it('NestFactory logs the failed start through the app logger, without the password', async () => {
    @Module({ imports: [DurableModule.forRoot({ databaseUrl: urlWith(PASSWORD) })], providers: [SecretsTask] })
    class AppModule {}
    const logger = new CapturingLogger();
    const result = await settle(() => NestFactory.createApplicationContext(AppModule, { logger, abortOnError: false }));
    if (result.ok) await result.value.close();
    expect(result.ok).toBe(false);
    expect((result as { error: Error }).error).toBeInstanceOf(DatabaseUnavailableError);
    // Nest's own exception handler printed it: the log is where a leak would show.
    expect(logger.lines.join('\n')).toMatch(/PostgreSQL is unreachable/);
    expectNoSecret(everythingOf((result as { error: Error }).error), PASSWORD, 'the error');
    expectNoSecret(logger.lines.join('\n'), PASSWORD, 'the log');
  });

  it('property: any password (special characters, unicode), any way of failing to connect: never in the error or the log', async () => {
    const password = fc
      .tuple(fc.string({ unit: 'grapheme', minLength: 6, maxLength: 16 }), fc.string({ unit: 'binary-ascii', minLength: 2, maxLength: 8 }))
      .map(([a, b]) => `Zq${a}${b}`)
      .filter((pw) => !pw.includes('\u0000'));
    const failure = fc.constantFrom('closed port', 'bad host', 'bad port', 'password in the query');
    await fc.assert(
      fc.asyncProperty(password, failure, async (pw, how) => {
        const databaseUrl = {
          'closed port': urlWith(pw),
          'bad host': `postgres://durable:${encodeURIComponent(pw)}@[bad/durable`,
          'bad port': urlWith(pw, '127.0.0.1:70000'),
          'password in the query': `postgres://durable@127.0.0.1:1/durable?password=${encodeURIComponent(pw)}`,
        }[how];
        const logger = new CapturingLogger();
        const result = await settle(() => DurableClient.connect({ databaseUrl, logger }));
        if (result.ok) await result.value.close();
        expect(result.ok).toBe(false);
        const error = (result as { error: Error }).error;
        expect(error).toBeInstanceOf(how === 'closed port' || how === 'password in the query' ? DatabaseUnavailableError : InvalidArgumentError);
        expectNoSecret(everythingOf(error), pw, `the error (${how})`);
        expectNoSecret(logger.lines.join('\n'), pw, `the log (${how})`);
      }),
      { seed: SEED, numRuns: 120, endOnFailure: true },
    );
  }, 120_000);
});

// ==================================================================================================

// Only a server that checks passwords can refuse one (a local PostgreSQL may trust every
// connection; the embedded test server checks them).
(checksPasswords ? describe : describe.skip)('a server that refuses the password', () => {
  let db: TestDatabase;
  let admin: pg.Pool;
  const ROLE = `durable_secrets_${process.pid}_${Date.now() % 100000}`;
  const rolePassword = 'Rl-s3cr3t-Pa55/w%rd';

  beforeAll(async () => {
    db = await createTestDatabase();
    admin = sqlPool(db.url);
    await admin.query(`drop role if exists ${ROLE}`).catch(() => undefined);
    await admin.query(`create role ${ROLE} login password '${rolePassword}'`);
    await admin.query(`grant all on database ${pg.escapeIdentifier(db.name)} to ${ROLE}`);
    await admin.query(`grant create on schema public to ${ROLE}`);
  });
  afterAll(async () => {
    await admin?.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [ROLE]).catch(() => undefined);
    await admin?.end();
    await db?.drop();
    const cleanup = new pg.Client({ connectionString: adminUrl() });
    await cleanup.connect();
    await cleanup.query(`drop role if exists ${ROLE}`).catch(() => undefined);
    await cleanup.end();
  });

  function roleUrl(password: string): string {
    const url = new URL(db.url);
    url.username = ROLE;
    url.password = encodeURIComponent(password);
    return url.toString();
  }

  it('a wrong password: DurableClient.connect rejects with a DurableError saying the authentication failed, without the password', async () => {
    const wrong = 'Wr0ng-s3cr3t-pw/%';
    const logger = new CapturingLogger();
    const result = await settle(() => DurableClient.connect({ databaseUrl: roleUrl(wrong), logger }));
    if (result.ok) await result.value.close();
    expect(result.ok).toBe(false);
    const error = (result as { error: Error }).error;
    expectNoSecret(everythingOf(error), wrong, 'the error');
    expectNoSecret(logger.lines.join('\n'), wrong, 'the log');
    expect({ durable: error instanceof DurableError, message: error.message }).toEqual({
      durable: true, message: expect.stringMatching(/password authentication failed/),
    });
    expect([DatabaseUnavailableError, InvalidArgumentError].some((type) => error instanceof type)).toBe(true);
  });

  it('property: wrong passwords of any shape are never echoed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', minLength: 6, maxLength: 24 }).map((tail) => `Zq${tail}`), async (wrong) => {
        const logger = new CapturingLogger();
        const result = await settle(() => DurableClient.connect({ databaseUrl: roleUrl(wrong), logger }));
        if (result.ok) await result.value.close();
        expect(result.ok).toBe(false);
        expectNoSecret(everythingOf((result as { error: Error }).error), wrong, 'the error');
        expectNoSecret(logger.lines.join('\n'), wrong, 'the log');
      }),
      { seed: SEED, numRuns: 10, endOnFailure: true },
    );
  }, 120_000);

  it('a running app whose password is changed under it logs its reconnection failures without the password', async () => {
    const logger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [DurableModule.forRoot({ databaseUrl: roleUrl(rolePassword), worker: { pollIntervalMs: 100 } })],
      providers: [SecretsTask],
    }).setLogger(logger).compile();
    const app = await moduleRef.init();
    try {
      const client = app.get(DurableClient);
      const { taskId } = await client.spawn(SecretsTask, {});
      await expect(client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBe(taskId);

      // The password changes and every session of the role is cut: the worker must reconnect, and fails.
      await admin.query(`alter role ${ROLE} password 'an0ther-s3cr3t'`);
      await admin.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [ROLE]);
      await eventually(() => logger.lines.some((line) => /password authentication failed/.test(line)), 15_000, 'a logged reconnection failure');
      const spawnError = await settle(() => client.spawn(SecretsTask, {}));
      expect(spawnError.ok).toBe(false);
      expectNoSecret(everythingOf((spawnError as { error: Error }).error), rolePassword, 'the spawn error');
    } finally {
      await admin.query(`alter role ${ROLE} password '${rolePassword}'`);
      await app.close();
    }
    expectNoSecret(logger.lines.join('\n'), rolePassword, 'the log');
    expectNoSecret(logger.lines.join('\n'), 'an0ther-s3cr3t', 'the log');
  });
});

// ==================================================================================================

/** A unix socket `<dir>/.s.PGSQL.<port>` that forwards to the test server over TCP (which has no socket of its own). */
async function socketTo(url: string): Promise<{ dir: string; port: number; close(): Promise<void> }> {
  const target = new URL(url);
  const dir = mkdtempSync(join(tmpdir(), 'durable-socket-'));
  const port = Number(target.port);
  const server: Server = createServer((down) => {
    const up = tcpConnect(port, target.hostname);
    down.pipe(up).pipe(down);
    const cut = () => {
      down.destroy();
      up.destroy();
    };
    down.on('error', cut).on('close', cut);
    up.on('error', cut).on('close', cut);
  });
  await new Promise<void>((resolve) => server.listen(join(dir, `.s.PGSQL.${port}`), resolve));
  return {
    dir, port,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('connection strings pg accepts are accepted (issue 13, item 7)', () => {
  let db: TestDatabase;
  let socket: Awaited<ReturnType<typeof socketTo>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    socket = await socketTo(db.url);
  });
  afterAll(async () => {
    await socket?.close();
    await db?.drop();
  });

  /** postgres://user:password@/database?host=<socket dir>&port=<port>: no host in the authority. */
  function socketUrl(password?: string): string {
    const url = new URL(db.url);
    const credentials = `${url.username}${password === undefined ? '' : `:${encodeURIComponent(password)}`}`;
    return `postgres://${credentials}@/${url.pathname.slice(1)}?host=${socket.dir}&port=${socket.port}`;
  }

  it('a unix-socket URL with no host (postgres://u:p@/db?host=/dir): the app starts, its worker (LISTEN included) runs a task', async () => {
    const url = new URL(db.url);
    const logger = new CapturingLogger();
    const moduleRef = await Test.createTestingModule({
      imports: [DurableModule.forRoot({ databaseUrl: socketUrl(decodeURIComponent(url.password)), worker: { pollIntervalMs: 60_000 } })],
      providers: [SecretsTask],
    }).setLogger(logger).compile();
    const app = await moduleRef.init();
    try {
      const client = app.get(DurableClient);
      await sleep(300); // the worker's first claim found nothing: only a notification starts the task in time
      const { taskId } = await client.spawn(SecretsTask, {});
      await expect(client.awaitResult(taskId, { timeoutMs: 15_000 })).resolves.toBe(taskId);
    } finally {
      await app.close();
    }
    expect(logger.lines.join('\n')).not.toMatch(/LISTEN connection failed/);
  });

  it('a socket directory where nothing listens: DatabaseUnavailableError, without the password', async () => {
    const databaseUrl = `postgres://durable:${encodeURIComponent(PASSWORD)}@/durable?host=${join(socket.dir, 'nothing-here')}`;
    const logger = new CapturingLogger();
    const result = await settle(() => DurableClient.connect({ databaseUrl, logger }));
    if (result.ok) await result.value.close();
    expect(result.ok).toBe(false);
    const error = (result as { error: Error }).error;
    expect(error).toBeInstanceOf(DatabaseUnavailableError);
    expectNoSecret(everythingOf(error), PASSWORD, 'the error');
    expectNoSecret(logger.lines.join('\n'), PASSWORD, 'the log');
  });

  it('a password in the query (?password=) is kept out of messages too', async () => {
    const secret = 'Qu3ry-s3cr3t/pw';
    const databaseUrl = `postgres://durable@127.0.0.1:1/durable?password=${encodeURIComponent(secret)}&application_name=${encodeURIComponent(secret)}`;
    const logger = new CapturingLogger();
    const result = await settle(() => DurableClient.connect({ databaseUrl, logger }));
    if (result.ok) await result.value.close();
    expect((result as { error: Error }).error).toBeInstanceOf(DatabaseUnavailableError);
    expectNoSecret(everythingOf((result as { error: Error }).error), secret, 'the error');
  });
});
