/**
 * Part 6 of "nothing is lost", short (5,000 healthy tasks is `npm run chaos`): poison rows on the
 * queue of hundreds of healthy tasks, inserted with SQL before the workers start and mid-run
 * (chaos/poison.ts): one bad task must not stop the claims of the others (issue 13, item 4).
 */
import { runPoison, type PoisonReport } from '../../chaos/poison.js';
import { formatPoison } from '../../chaos/report.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let db: TestDatabase | undefined;
let report: PoisonReport;

beforeAll(async () => {
  db = await createTestDatabase();
  report = await runPoison({ databaseUrl: db.url, healthy: 600, poisonEach: 4, workers: 2, concurrency: 10, leaseMs: 5000 });
  console.log(`poison among thousands (short)\n${formatPoison(report)}`);
}, 100_000);

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('poison rows among healthy tasks on one queue', () => {
  it('completes every healthy task once, on its first attempt, each step run once', () => {
    expect(report.lostTasks).toBe(0);
    expect(report.doubleCompletions).toBe(0);
    expect(report.wrongResults).toBe(0);
    expect(report.badCheckpoints).toBe(0);
    expect(report.reExecutedSteps).toBe(0);
  });

  it('isolates the poison: a factor of 0 is retried to completion, a run that cannot be failed fails its task alone', () => {
    expect(report.zeroFactorRetried).toBe(4);
    expect(report.corruptFailed).toBe(4);
  });

  it('logs no claim error, nor anything else', () => {
    expect(report.claimErrors).toBe(0);
    expect(report.otherLogLines).toBe(0);
    expect(report.escaped).toBe(0);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });
});
