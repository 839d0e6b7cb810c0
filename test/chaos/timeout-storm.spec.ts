/**
 * Part 7 of "nothing is lost", short (one burst of each kind; 30 s with three workers is
 * `npm run chaos`): workers and spawners with queryTimeoutMs 300 while a saboteur holds durable's
 * tables and rows locked past the timeouts and freezes one process's connections past the
 * client's backstop (chaos/timeout-storm.ts): nothing duplicated, nothing lost, nothing stranded
 * (issue 13, item 2).
 */
import { formatTimeoutStorm } from '../../chaos/report.js';
import { runTimeoutStorm, type TimeoutStormReport } from '../../chaos/timeout-storm.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let db: TestDatabase | undefined;
let report: TimeoutStormReport;

beforeAll(async () => {
  db = await createTestDatabase();
  report = await runTimeoutStorm({
    databaseUrl: db.url, durationMs: 4000, workers: 2, concurrency: 4, leaseMs: 3000, queryTimeoutMs: 300, callers: 3, spawnPauseMs: 20,
    freezeMs: [1400, 1600], lockMs: [300, 600],
  });
  console.log(`statement-timeout storm (short)\n${formatTimeoutStorm(report)}`);
}, 100_000);

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('a statement-timeout storm', () => {
  it('holds each kind of lock and freezes a worker and the spawner; both sides see DatabaseTimeoutError', () => {
    expect(Object.keys(report.sabotage).sort()).toEqual(['checkpoints table', 'runs table', 'spawner frozen', 'task rows', 'tasks table', 'worker frozen']);
    expect(report.spawnErrors.DatabaseTimeoutError + report.workerLines.DatabaseTimeoutError + report.handlerErrors.DatabaseTimeoutError).toBeGreaterThan(0);
    expect(report.escaped).toBe(0);
  });

  it('duplicates nothing: one task per key, no double completion, no checkpoint replaced, no unexplained re-run', () => {
    expect(report.duplicateKeys).toBe(0);
    expect(report.doubleCompletions).toBe(0);
    expect(report.checkpointsReplaced).toBe(0);
    expect(report.unexplained).toBe(0);
    expect(Object.keys(report.spawnCommittedAfter).filter((name) => name !== 'OutcomeUnknownError')).toEqual([]);
  });

  it('loses nothing: every task stored completes with its checkpoints\' values', () => {
    expect(report.lost).toBe(0);
    expect(report.wrongResults).toBe(0);
    expect(report.badCheckpoints).toBe(0);
  });

  it('strands nothing: claims whose answer was lost are put back, and no run is left held after the storm', () => {
    expect(report.stranded).toBe(0);
    expect(report.strandedAfter).toBe(0);
    expect(report.putBack).toBe(report.unexecutedClaims);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });
});
