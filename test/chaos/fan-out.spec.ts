/**
 * Part 8 of "nothing is lost", short (4 parents of 1,000 children is `npm run chaos`): two
 * `fanout` parents each spawn 200 one-step children and join them all while a killer SIGKILLs a
 * random worker every 300 ms, five times (chaos/fan-out.ts audits parents, spawn steps, joins
 * and children from the database and the test's own logs).
 */
import { auditFanOut, runFanOut, type FanOutReport } from '../../chaos/fan-out.js';
import { formatFanOut } from '../../chaos/report.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { sqlPool } from '../helpers/durable-app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const PARENTS = 2;
const CHILDREN = 200;
let db: TestDatabase | undefined;

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('fan-out over the crash storm', () => {
  let report: FanOutReport;

  beforeAll(async () => {
    db = await createTestDatabase();
    report = await runFanOut({
      databaseUrl: db.url, parents: PARENTS, children: CHILDREN, batch: 10, workers: 3, concurrency: 2, kills: 5, killIntervalMs: 300,
      leaseMs: 2000, stepPauseMs: 5,
    });
    console.log(`fan-out (short)\n${formatFanOut(report)}`);
  }, 100_000);

  it('kills five workers while the parents fan out and in, and starts a replacement for each', () => {
    expect(report.kills).toBe(5);
    expect(report.workersStarted).toBe(3 + 5);
    expect(report.escaped).toBe(0);
  });

  it('loses no child and spawns no second child: exactly one child per spawn step', () => {
    expect(report.lostChildren).toBe(0);
    expect(report.secondChildren).toBe(0);
    expect(report.badSpawnCheckpoints).toBe(0);
    expect(report.lostTasks).toBe(0);
    expect(report.wrongResults).toBe(0);
  });

  it('completes every parent once, with the right fan-in, woken once', () => {
    expect(report.lostParents).toBe(0);
    expect(report.wrongParentResults).toBe(0);
    expect(report.doubleCompletions).toBe(0);
    expect(report.badJoins).toBe(0);
    expect(report.maxParentSuspensions).toBeLessThanOrEqual(1);
  });

  it('re-executes only children\'s steps in flight in a killed worker', () => {
    expect(report.unexplained).toBe(0);
    expect(report.reExecutedSteps).toBeLessThanOrEqual(report.bound);
    expect(report.badCheckpoints).toBe(0);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });

  // Last: it forges evidence in the run's database.
  it('the audit is strict: a child moved to the other parent is a lost child and a second child; a forged result is caught', async () => {
    const pool = sqlPool(db!.url);
    try {
      const { rows: parents } = await pool.query<{ id: string }>(`select id from durable.tasks where name = 'fanout' order by params->>'seed'`);
      await pool.query(
        `update durable.tasks set parent_task_id = $2 where id = (select id from durable.tasks where parent_task_id = $1 order by id limit 1)`,
        [parents[0].id, parents[1].id],
      );
      await pool.query(`update durable.tasks set result = '{"children": 200, "sum": 0}' where id = $1`, [parents[1].id]);
      await pool.query(`delete from durable.checkpoints where task_id = $1 and name = 'spawn:c7'`, [parents[1].id]);
      const audit = await auditFanOut(pool, PARENTS, CHILDREN);
      expect(audit.figures).toMatchObject({ lostChildren: 1, secondChildren: 1, wrongParentResults: 1, badSpawnCheckpoints: 2, lostParents: 0 });
      expect(audit.violations.length).toBeGreaterThanOrEqual(4);
    } finally {
      await pool.end();
    }
  });
});
