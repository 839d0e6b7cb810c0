// `nestjs-durable/testing`: what a user needs to test their own tasks (see the README's "Testing").
export { DurableTestDatabase, type TestDatabaseOptions, type AppWithDurable } from './test-database.js';
export { startEmbeddedPostgres, type EmbeddedPostgresOptions, type EmbeddedPostgresServer } from './embedded-postgres.js';
