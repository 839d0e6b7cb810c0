import { createRequire } from 'node:module';
import type { Client, ClientConfig, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { ConnectionSettings } from '../options.js';
import { runMigrations } from '../sql/migrator.js';
import type { DurableLogger } from '../support/logger.js';
import { redact, translateDatabaseError } from './database-errors.js';
import { Notifier } from './notifier.js';
import { Store, timeoutsFor } from './store.js';

/** TCP keep-alive probes start after this much silence (the OS default is 2 hours). */
const KEEP_ALIVE_DELAY_MS = 10_000;

/**
 * Durable's hold on Postgres: a TypeORM DataSource (its own, or the app's), the store on its
 * pool, and the notifier on a client of its own. Closing it closes only what it opened, and
 * nothing durable holds keeps the app from destroying its own DataSource first.
 */
export class DurableConnection {
  private closing: Promise<void> | undefined;

  private constructor(
    readonly dataSource: DataSource,
    readonly store: Store,
    readonly notifier: Notifier,
    private readonly owned: boolean,
  ) {}

  /** Connects with settings that `resolveOptions` checked. */
  static async open(options: ConnectionSettings, logger: DurableLogger): Promise<DurableConnection> {
    const { schema } = options;
    const { dataSource, owned, password } = await connect(options, logger);
    try {
      if (options.migrationsRun) {
        const applied = await runMigrations(dataSource, schema);
        if (applied.length > 0) logger.log(`applied migrations to schema "${schema}": ${applied.join(', ')}`);
      }
      const pool = (dataSource.driver as unknown as { master: Pool }).master;
      const store = new Store(pool, schema, password, timeoutsFor(options.queryTimeoutMs));
      const notifier = new Notifier(listenClients(dataSource), Object.values(store.sql.channels), logger);
      return new DurableConnection(dataSource, store, notifier, owned);
    } catch (error) {
      if (owned) await dataSource.destroy().catch(() => undefined);
      throw translateDatabaseError(error, password);
    }
  }

  /** Idempotent: a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.notifier.stop();
      if (this.owned && this.dataSource.isInitialized) await this.dataSource.destroy();
    })();
    return this.closing;
  }
}

/** What `listenClients` reads of a postgres DataSource's options (TypeORM's own names). */
interface PostgresCredentials {
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: ClientConfig['password'];
  database?: string;
  ssl?: ClientConfig['ssl'];
  applicationName?: string;
}
interface PostgresOptions extends PostgresCredentials {
  connectTimeoutMS?: number;
  extra?: Record<string, unknown> & { Client?: new (config: ClientConfig) => Client };
  replication?: { master: PostgresCredentials };
}

/**
 * Makes unconnected clients to the DataSource's (master) database, with the settings TypeORM
 * gives its own pool (PostgresDriver.createPool): credentials, `connectTimeoutMS`,
 * `applicationName`, and `extra` (the pg options) last. Only a connect timeout (10 s) and TCP
 * keep-alive after 10 s of silence are added when not set: a LISTEN connection is idle, a dead
 * peer would go unseen (the notifier's ping finds a peer that is up but silent).
 */
function listenClients(dataSource: DataSource): () => Client {
  const options = dataSource.options as PostgresOptions;
  const credentials = options.replication?.master ?? options;
  const { Client: custom, ...extra } = options.extra ?? {};
  const ClientClass = custom ?? (dataSource.driver as unknown as { postgres: { Client: new (config: ClientConfig) => Client } }).postgres.Client;
  const config: ClientConfig = {
    connectionString: credentials.url,
    host: credentials.host,
    user: credentials.username,
    password: credentials.password,
    database: credentials.database,
    port: credentials.port,
    ssl: credentials.ssl,
    connectionTimeoutMillis: options.connectTimeoutMS ?? 10_000,
    application_name: options.applicationName ?? credentials.applicationName,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY_MS,
    ...extra,
  };
  return () => new ClientClass(config);
}

async function connect(options: ConnectionSettings, logger: DurableLogger) {
  if (options.dataSource) {
    if (!options.dataSource.isInitialized) {
      throw new InvalidArgumentError('dataSource must be initialized before durable starts (await dataSource.initialize())');
    }
    if (options.dataSource.options.type !== 'postgres') {
      throw new InvalidArgumentError(`dataSource must be a postgres DataSource, got "${options.dataSource.options.type}"`);
    }
    return { dataSource: options.dataSource, owned: false, password: undefined };
  }
  const url = options.databaseUrl ?? process.env.DURABLE_DATABASE_URL;
  if (!url) {
    throw new InvalidArgumentError(
      'no database configured: set the databaseUrl option, or the DURABLE_DATABASE_URL environment variable, or pass a TypeORM dataSource',
    );
  }
  const password = passwordOf(url);
  const timeouts = timeoutsFor(options.queryTimeoutMs);
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    poolSize: options.poolSize, // the LISTEN connection is a client of its own, outside the pool
    applicationName: 'nestjs-durable',
    connectTimeoutMS: 10_000,
    extra: {
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEP_ALIVE_DELAY_MS,
      // The server cancels a statement that runs or waits too long: a timeout is a rollback.
      statement_timeout: timeouts.statementMs,
      lock_timeout: timeouts.lockMs,
      // Only a server that does not answer at all is given up on here (OutcomeUnknownError).
      query_timeout: timeouts.backstopMs,
    },
    poolErrorHandler: (error: Error) => logger.warn(`idle connection lost: ${translateDatabaseError(error, password).message}`),
  });
  try {
    await dataSource.initialize();
  } catch (error) {
    throw translateDatabaseError(error, password);
  }
  return { dataSource, owned: true, password };
}

const INVALID_URL = 'databaseUrl is not a valid URL (expected postgres://user:password@host:port/database)';

/**
 * @internal The password of a connection string, for scrubbing it from messages. Accepts what
 * pg's own parser (pg-connection-string) accepts under postgres:// or postgresql://, such as
 * `postgres://u:p@/db?host=/var/run/postgresql` (a unix socket), `postgres:///db` and a
 * `?password=` parameter; refuses the rest without repeating the URL (it holds the password).
 */
export function passwordOf(url: string): string | undefined {
  // pg quietly repairs a stray '%' (TypeORM's own parser then throws), so it is refused here.
  if (!/^postgres(ql)?:\/\//i.test(url) || /%(?![0-9a-f]{2})/i.test(url)) throw new InvalidArgumentError(INVALID_URL);
  const authority = /^[^:]+:\/\/([^/?#]*)/.exec(url)![1];
  if (authority.slice(authority.lastIndexOf('@') + 1).includes(',')) {
    throw new InvalidArgumentError(`${INVALID_URL}: it names several hosts, and node-postgres connects to one`);
  }
  let parsed: { password?: unknown };
  try {
    parsed = parseConnectionString(url);
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (error instanceof TypeError || code === 'ERR_INVALID_URL') throw new InvalidArgumentError(INVALID_URL);
    // Such as a certificate file named by sslrootcert that cannot be read.
    throw new InvalidArgumentError(`databaseUrl cannot be used: ${redact(String(message))}`);
  }
  return typeof parsed.password === 'string' && parsed.password !== '' ? parsed.password : undefined;
}

/** pg's own parser, loaded from where pg finds it (it is pg's dependency, not ours). */
function parseConnectionString(url: string): { password?: unknown } {
  const fromPg = createRequire(createRequire(import.meta.url).resolve('pg'));
  return (fromPg('pg-connection-string') as { parse(url: string): { password?: unknown } }).parse(url);
}
