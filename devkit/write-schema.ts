// `npm run schema:dump`: migrates a fresh database and writes lib/engine/sql/schema.sql from it.
// On DURABLE_TEST_DATABASE_URL when set (a role that may create databases), else on an embedded
// PostgreSQL of its own.
import { writeFile } from 'node:fs/promises';
import { DurableClient } from '../lib/index.js';
import { createDatabase, sqlPool } from './databases.js';
import { startEmbeddedPostgres } from '../lib/testing/embedded-postgres.js';
import { dumpSchema } from './schema-dump.js';

const target = new URL('../lib/engine/sql/schema.sql', import.meta.url);
const server = process.env.DURABLE_TEST_DATABASE_URL ? undefined : await startEmbeddedPostgres();
try {
  const database = await createDatabase(process.env.DURABLE_TEST_DATABASE_URL ?? server!.adminUrl, { prefix: 'durable_schema' });
  try {
    const client = await DurableClient.connect({ databaseUrl: database.url, logger: { log() {}, warn() {}, error: console.error } });
    await client.close();
    const pool = sqlPool(database.url);
    try {
      await writeFile(target, await dumpSchema(pool));
    } finally {
      await pool.end();
    }
  } finally {
    await database.drop();
  }
  console.log(`wrote ${target.pathname}`);
} finally {
  await server?.destroy();
}
