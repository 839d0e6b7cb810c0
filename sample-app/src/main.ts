/**
 * The sample app's entry point (`npm start` at the repository root builds and runs it):
 * an HTTP API for orders, each order a durable `order` task.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module.js';
import { loadConfig, SetupError } from './config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './database/embedded-postgres.js';
import { redactUrl } from './database/redact-url.js';

const logger = new Logger('SampleApp');

// `npm start | tee log`: Ctrl-C ends tee too, and a log line written to the closed pipe must
// not crash the app before its worker has drained.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

async function bootstrap(): Promise<void> {
  const config = loadConfig();

  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  let databaseNote = 'from DURABLE_DATABASE_URL';
  if (!databaseUrl) {
    logger.log(`DURABLE_DATABASE_URL is not set: starting an embedded PostgreSQL (data in ${config.dataDir})`);
    embedded = await startEmbeddedPostgres(config.dataDir, (message) => logger.log(message));
    databaseUrl = embedded.url;
    databaseNote = `embedded, data in ${config.dataDir}`;
  }

  let app: NestExpressApplication | undefined;
  try {
    app = await NestFactory.create<NestExpressApplication>(
      AppModule.forRoot({
        databaseUrl,
        packTimeoutMs: config.packTimeoutMs,
        confirmDelayMs: config.confirmDelayMs,
        failFirstPayment: config.failFirstPayment,
      }),
      // Startup errors reach the catch below instead of aborting the process.
      { abortOnError: false },
    );
    // Ctrl-C (SIGINT) or SIGTERM: the app closes (durable's worker stops claiming and lets
    // running handlers finish, then TypeOrmModule closes the DataSource that durable shares),
    // then the process exits with code 0, and the embedded PostgreSQL, if any, stops as its app
    // process goes.
    app.enableShutdownHooks([], { useProcessExit: true });
    await app.listen(config.port);

    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.log(`Listening on http://localhost:${port}`);
    logger.log(`Database: ${redactUrl(databaseUrl)} (${databaseNote})`);
    if (config.failFirstPayment) logger.warn('FAIL_FIRST_PAYMENT is on: every payment step fails on its first attempt');
  } catch (error) {
    await app?.close().catch(() => undefined);
    await embedded?.stop();
    throw error;
  }
}

bootstrap().catch((error: unknown) => {
  // Durable's errors never contain the password. A setup problem needs no stack trace.
  logger.error(error instanceof SetupError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
