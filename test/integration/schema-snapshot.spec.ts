import { readFile } from 'node:fs/promises';
import { DurableClient, type DurableLogger } from '../../lib/index.js';
import { dumpSchema } from '../../devkit/index.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const silent: DurableLogger = { log() {}, warn() {}, error() {} };
const SNAPSHOT = new URL('../../lib/engine/sql/schema.sql', import.meta.url);

describe('schema snapshot (lib/engine/sql/schema.sql)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('is exactly what the migrations produce on a fresh database (update it with npm run schema:dump)', async () => {
    const client = await DurableClient.connect({ databaseUrl: db.url, logger: silent });
    await client.close();
    const pool = sqlPool(db.url);
    try {
      expect(await dumpSchema(pool)).toBe(await readFile(SNAPSHOT, 'utf8'));
    } finally {
      await pool.end();
    }
  });
});
