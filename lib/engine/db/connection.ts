import type { Client, ClientConfig, Pool } from 'pg';
import { DataSource } from 'typeorm';
import { InvalidArgumentError } from '../../errors/invalid-argument.error.js';
import type { ConnectionSettings } from '../options.js';
import { runMigrations } from '../sql/migrator.js';
import type { DurableLogger } from '../support/logger.js';
import { timerMs } from '../support/wakeable.js';
import { translateDatabaseError } from './database-errors.js';
import { Notifier } from './notifier.js';
import { Store } from './store.js';

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
      const store = new Store(pool, schema, password);
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
 * keep-alive are added when not set: a LISTEN connection is idle, a dead peer would go unseen.
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
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    poolSize: options.poolSize, // the LISTEN connection is a client of its own, outside the pool
    applicationName: 'nestjs-durable',
    connectTimeoutMS: 10_000,
    // A statement with no answer (a network partition) is abandoned and its connection dropped.
    extra: { keepAlive: true, query_timeout: timerMs(options.queryTimeoutMs) },
    poolErrorHandler: (error: Error) => logger.warn(`idle connection lost: ${translateDatabaseError(error, password).message}`),
  });
  try {
    await dataSource.initialize();
  } catch (error) {
    throw translateDatabaseError(error, password);
  }
  return { dataSource, owned: true, password };
}

function passwordOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === 'postgres:' || parsed.protocol === 'postgresql:') {
      return decodeURIComponent(parsed.password) || undefined;
    }
  } catch {
    // reported below, without the URL: it holds the password
  }
  throw new InvalidArgumentError('databaseUrl is not a valid URL (expected postgres://user:password@host:port/database)');
}
