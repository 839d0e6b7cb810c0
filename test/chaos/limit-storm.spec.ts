/**
 * Part 9, short (the full size is `npm run chaos`): worker processes with 12 slots between them
 * run tasks limited to 3 at once across all processes, while a killer SIGKILLs a random worker
 * every 300 ms, four times, and starts a replacement each time. chaos/limit-storm.ts replays every
 * execution the handlers recorded (a killed one until its run's lease expired) and finds the most
 * in flight at one instant.
 */
import { auditLimit, LIMIT, runLimitStorm, type LimitStormReport } from '../../chaos/limit-storm.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let db: TestDatabase | undefined;

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('crash storm under a concurrency limit', () => {
  let report: LimitStormReport;

  beforeAll(async () => {
    db = await createTestDatabase();
    report = await runLimitStorm({
      databaseUrl: db.url, tasks: 60, workers: 3, concurrency: 4, kills: 4, killIntervalMs: 300, leaseMs: 1500, pauseMs: 40,
    });
    console.log(`limit storm (short): ${JSON.stringify(report)}`);
  }, 120_000);

  it('completes every task through the kills', () => {
    expect(report.kills).toBe(4);
    expect(report.completed).toBe(60);
  });

  it('never has more than the limit in flight, and reaches it (12 slots were free)', () => {
    expect(report.maxInFlight).toBe(LIMIT);
    expect(report.unexplainedOpen).toBe(0);
    expect(report.violations).toEqual([]);
  });

  // Last: it forges evidence in the storm's database.
  it('the audit is strict: a fourth execution beside three is caught', async () => {
    const pool = sqlPool(db!.url);
    try {
      await pool.query(`
        insert into public.chaos_limited (task_id, attempt, pid, started_at, ended_at)
        select r.task_id, r.attempt, 1, t.at + (g * interval '1 microsecond'), t.at + interval '1 second'
        from (select now() + interval '1 hour' as at) t, generate_series(1, 4) g,
          lateral (select task_id, attempt from durable.runs limit 1) r`);
      expect((await auditLimit(pool)).maxInFlight).toBe(4);
    } finally {
      await pool.end();
    }
  });
});
