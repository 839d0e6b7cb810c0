/**
 * Part 1 of "nothing is lost", short (the full size is `npm run chaos`): worker processes
 * (chaos/worker.ts) share one database and run 150 tasks of 3-5 steps while a killer SIGKILLs a
 * random worker every 250 ms, six times, and starts a replacement each time. Each worker runs
 * one task at a time, so each kill can explain at most one re-executed step. chaos/crash-storm.ts
 * accounts for every task, checkpoint, completion and effect (see its comment).
 */
import { auditStorm, runCrashStorm, stormRules, type StormReport } from '../../chaos/crash-storm.js';
import { formatStorm } from '../../chaos/report.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let db: TestDatabase | undefined;

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('crash storm', () => {
  let report: StormReport;

  beforeAll(async () => {
    db = await createTestDatabase();
    report = await runCrashStorm({
      databaseUrl: db.url, tasks: 150, minSteps: 3, maxSteps: 5, workers: 3, kills: 6, killIntervalMs: 250,
      concurrency: 1, leaseMs: 2000, stepPauseMs: 20,
    });
    console.log(`crash storm (short)\n${formatStorm(report)}`);
  }, 100_000);

  it('kills six workers and starts a replacement for each', () => {
    expect(report.kills).toBe(6);
    expect(report.workersStarted).toBe(3 + 6);
    expect(report.escaped).toBe(0);
  });

  it('loses no task: every one completed with the result its params determine', () => {
    expect(report.lostTasks).toBe(0);
    expect(report.wrongResults).toBe(0);
  });

  it('completes no task twice', () => {
    expect(report.doubleCompletions).toBe(0);
  });

  it('writes each step\'s checkpoint exactly once', () => {
    expect(report.badCheckpoints).toBe(0);
  });

  it('re-executes only steps in flight in a killed worker: at most one per kill', () => {
    expect(report.unexplained).toBe(0);
    expect(report.bound).toBe(6);
    expect(report.reExecutedSteps).toBeLessThanOrEqual(report.bound);
    // Each killed process left the runs it held to lease expiry; nothing else expired. It held
    // at most `concurrency` (1) handlers and as many outcomes on their way (a slot frees when
    // its handler settles): two runs per kill.
    expect(report.leaseExpiriesOfKilled).toBe(report.leaseExpiries);
    expect(report.leaseExpiries).toBeLessThanOrEqual(2 * report.kills);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });

  // Last: it forges evidence in the storm's database.
  it('the audit is strict: forged evidence of each failure is caught', async () => {
    const pool = sqlPool(db!.url);
    try {
      const { rows } = await pool.query<{ id: string; run_id: string }>(`select id, run_id from durable.tasks order by id limit 5`);
      const [lost, twice, overwritten, wrong, rerun] = rows;
      await pool.query(`update durable.tasks set state = 'pending' where id = $1`, [lost.id]);
      await pool.query(`insert into public.chaos_completions (task_id, run_id, previous_state) values ($1, $2, 'running')`, [twice.id, twice.run_id]);
      await pool.query(`update durable.checkpoints set attempt = attempt where task_id = $1 and name = 'step:s1'`, [overwritten.id]);
      // Updating a completed task's result is also a second write of its completion.
      await pool.query(`update durable.tasks set result = '{"sum": 0, "steps": 3}' where id = $1`, [wrong.id]);
      // A step run again by a process nobody killed, in an attempt that never existed.
      await pool.query(`insert into public.chaos_effects (task_id, step, attempt, pid) values ($1, 1, 0, 1)`, [rerun.id]);

      const audit = await auditStorm(pool, stormRules(new Set(report.killedPids), 1));
      expect(audit.figures).toEqual({
        lostTasks: 1, doubleCompletions: 2, wrongResults: 1, badCheckpoints: 1, unexplained: 1,
        reExecutedSteps: report.reExecutedSteps + 1,
      });
      expect(audit.violations.length).toBeGreaterThanOrEqual(5);
    } finally {
      await pool.end();
    }
  });
});
