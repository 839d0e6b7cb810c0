/**
 * Part 5 of "nothing is lost", short (the full size is `npm run chaos`): tasks whose steps run
 * beside and between sleeps of a few milliseconds, on worker processes with fixed worker ids that
 * are SIGKILLed and restarted under the same id, their batched writes held back up to 30 ms on
 * the way (chaos/suspend-storm.ts). A suspended execution's late write must never be taken for
 * the next execution's, on the same worker id: the claim epoch (issue 13, item 1).
 */
import { formatSuspendStorm } from '../../chaos/report.js';
import { auditLedger } from '../../chaos/ledger.js';
import { runSuspendStorm, type SuspendStormReport } from '../../chaos/suspend-storm.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let db: TestDatabase | undefined;
let report: SuspendStormReport;

beforeAll(async () => {
  db = await createTestDatabase();
  report = await runSuspendStorm({
    databaseUrl: db.url, tasks: 100, minRounds: 3, maxRounds: 5, workers: 3, concurrency: 4, kills: 2, killIntervalMs: 1000,
    leaseMs: 2000, sleepMs: 3, pauseMs: 0, writeDelayMs: 30,
  });
  console.log(`suspend storm (short)\n${formatSuspendStorm(report)}`);
}, 100_000);

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('suspend storm: steps beside sleeps, workers restarted under their worker id', () => {
  it('kills two workers, restarts each under its id, and resumes runs on the worker id that suspended them', () => {
    expect(report.kills).toBe(2);
    expect(report.workersStarted).toBe(3 + 2);
    expect(report.sameWorkerResumes).toBeGreaterThan(30);
    expect(report.bySuspension).toBeGreaterThan(0); // steps were in flight when their execution suspended
    expect(report.escaped).toBe(0);
  });

  it('loses no task and completes none twice, each with the values its checkpoints hold', () => {
    expect(report.lost).toBe(0);
    expect(report.doubleCompletions).toBe(0);
    expect(report.wrongResults).toBe(0);
  });

  it('never replaces a checkpoint nor accepts a write of an execution whose claim had ended', () => {
    expect(report.checkpointsReplaced).toBe(0);
    expect(report.badCheckpoints).toBe(0);
    expect(report.seenNotStored).toBe(0);
    expect(report.staleWrites).toBe(0);
  });

  it('re-runs a step only when its execution suspended with it in flight, or was killed (at most concurrency per kill)', () => {
    expect(report.unexplained).toBe(0);
    expect(report.byKill).toBeLessThanOrEqual(report.killBound);
    expect(report.reExecutedSteps).toBe(report.bySuspension + report.byKill);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });

  // Last: it forges evidence in the storm's database.
  it('the audit is strict: forged evidence of each failure is caught', async () => {
    const pool = sqlPool(db!.url);
    try {
      const { rows } = await pool.query<{ task_id: string }>(`select distinct task_id from durable.checkpoints where name = 'step:s1' limit 3`);
      const [replaced, lost, rerun] = rows.map((row) => row.task_id);
      // A checkpoint overwritten by another execution, as a late write without the epoch would.
      await pool.query(`update durable.checkpoints set value = json_build_object('v', (value->>'v')::int, 'by', gen_random_uuid()) where task_id = $1 and name = 'step:s1'`, [replaced]);
      await pool.query(`update durable.tasks set state = 'pending' where id = $1`, [lost]);
      await pool.query(`insert into public.chaos_step_runs (task_id, step, exec, pid) values ($1, 2, gen_random_uuid(), 1)`, [rerun]);
      const audit = await auditLedger(pool, { killed: new Set(), concurrency: 4, failures: false, expiry: () => true, unexecuted: () => true });
      expect(audit.figures).toMatchObject({ checkpointsReplaced: 1, lost: 1 });
      expect(audit.figures.unexplained).toBeGreaterThanOrEqual(1);
      expect(audit.figures.wrongResults).toBeGreaterThanOrEqual(1);
      expect(audit.figures.seenNotStored).toBeGreaterThanOrEqual(1);
      expect(audit.figures.staleWrites).toBeGreaterThanOrEqual(1);
    } finally {
      await pool.end();
    }
  });
});
