import type { Pool } from 'pg';
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
 * pool, and the notifier. Closing it closes only what it opened.
 */
export class DurableConnection {
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
      return new DurableConnection(dataSource, store, new Notifier(pool, Object.values(store.sql.channels), logger), owned);
    } catch (error) {
      if (owned) await dataSource.destroy().catch(() => undefined);
      throw translateDatabaseError(error, password);
    }
  }

  async close(): Promise<void> {
    await this.notifier.stop();
    if (this.owned && this.dataSource.isInitialized) await this.dataSource.destroy();
  }
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
    poolSize: options.poolSize + 1, // one more for the LISTEN connection
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
