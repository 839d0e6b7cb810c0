/**
 * Part 10, short (the minute-long run is `npm run chaos`, part 10): three worker processes on one
 * database each declare the same every-second schedule at startup and run for ~10 s of real time;
 * the audit (chaos/schedule-ticks.ts) finds exactly one task per tick second between the first
 * and the last, none missing, each with its tick in headers['durable.scheduledFor'].
 */
import { auditTicks, runScheduleTicks, type TicksReport } from '../../chaos/schedule-ticks.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let db: TestDatabase | undefined;

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('schedule ticks with three worker processes', () => {
  let report: TicksReport;

  beforeAll(async () => {
    db = await createTestDatabase();
    report = await runScheduleTicks({ databaseUrl: db.url, workers: 3, durationMs: 10_000 });
    console.log(`schedule ticks (short): ${JSON.stringify(report)}`);
  }, 120_000);

  it('spawns exactly one task per tick second, none missing, each with its tick in its headers', () => {
    expect(report.expectedAtLeast).toBeGreaterThanOrEqual(8);
    expect(report.ticks).toBeGreaterThanOrEqual(report.expectedAtLeast);
    expect(report.tasks).toBe(report.ticks);
    expect(report.duplicates).toEqual([]);
    expect(report.gaps).toEqual([]);
    expect(report.malformed).toBe(0);
    expect(report.unfinished).toBe(0);
    expect(report.violations).toEqual([]);
  });

  // Last: it forges evidence in the run's database.
  it('the audit is strict: a second task for a tick, a missing tick and a wrong header are caught', async () => {
    const pool = sqlPool(db!.url);
    try {
      const { rows } = await pool.query(`select id, headers->>'durable.scheduledFor' as at from durable.tasks where name = 'tick' order by 2`);
      const middle = rows[Math.floor(rows.length / 2)];
      // A copy of one tick's task (another id, no idempotency key: what a second firing without the key would leave).
      await pool.query(`
        create temp table forged as select * from durable.tasks where id = $1;
        update forged set id = gen_random_uuid(), idempotency_key = null;
        insert into durable.tasks select * from forged;
        drop table forged;`.replace(/\$1/g, `'${middle.id as string}'`));
      let audit = await auditTicks(pool);
      expect(audit.duplicates.length + audit.malformed).toBeGreaterThan(0);
      expect(audit.violations.length).toBeGreaterThan(0);
      await pool.query(`delete from durable.tasks where name = 'tick' and idempotency_key is null`);
      await pool.query(`delete from durable.tasks where id = $1`, [rows[2].id]);
      audit = await auditTicks(pool);
      expect(audit.gaps).toEqual([rows[2].at]);
      await pool.query(`update durable.tasks set headers = '{"durable.scheduledFor":"2020-01-01T00:00:00.500Z"}' where id = $1`, [rows[3].id]);
      audit = await auditTicks(pool);
      expect(audit.malformed).toBe(1);
    } finally {
      await pool.end();
    }
  });
});
