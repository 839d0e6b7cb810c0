/**
 * Part 3 of "nothing is lost", short (the full size, 20,000 and 5,000 tasks, is `npm run chaos`):
 * a burst of 3,000 tasks through two worker processes with bounded memory, then 1,000 tasks
 * asleep or waiting at once that hold no worker slot and no memory (chaos/load.ts).
 */
import { runLoad, type LoadReport } from '../../chaos/load.js';
import { formatLoad } from '../../chaos/report.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

const MB = 1024 * 1024;
let db: TestDatabase | undefined;
let report: LoadReport;

beforeAll(async () => {
  db = await createTestDatabase();
  report = await runLoad({ databaseUrl: db.url, tasks: 3000, suspended: 1000, concurrency: 5 });
  console.log(`load and memory (short)\n${formatLoad(report)}`);
}, 100_000);

afterAll(async () => {
  await cleanUpWorkers();
  await db?.drop();
});

describe('a burst of 3,000 tasks through two worker processes', () => {
  it('completes every task with its result, both workers taking part', () => {
    expect(report.burst.completed).toBe(3000);
    expect(report.burst.wrongResults).toBe(0);
    expect(report.burst.workers.map((worker) => worker.processed > 0)).toEqual([true, true]);
    expect(report.burst.workers.reduce((sum, worker) => sum + worker.processed, 0)).toBe(3000);
  });

  it('keeps each worker\'s memory bounded: RSS does not climb with the tasks processed, nor the live heap', () => {
    for (const worker of report.burst.workers) {
      expect(worker.peakRssFirstHalf).toBeGreaterThan(0);
      expect(worker.peakRssSecondHalf).toBeLessThanOrEqual(1.25 * worker.peakRssFirstHalf + 20 * MB);
      expect(worker.heapAtEnd).toBeLessThanOrEqual(worker.heapAtQuarter + 8 * MB);
    }
  });
});

describe('1,000 tasks asleep or waiting for events at once', () => {
  it('are all suspended', () => {
    expect(report.suspended.sleeping).toBe(1000);
    expect(report.suspended.workers.reduce((sum, worker) => sum + worker.suspendedHere, 0)).toBe(1000);
  });

  it('hold no worker slot: nothing executing or in flight, no run running, and quick tasks for every slot complete', () => {
    for (const worker of report.suspended.workers) {
      expect(worker.executing).toBe(0);
      expect(worker.workerInFlight).toBe(0);
    }
    expect(report.suspended.runningRuns).toBe(0);
    expect(report.suspended.quickTasks).toBe(2 * 5);
  });

  it('hold no memory per task in the workers', () => {
    for (const worker of report.suspended.workers) {
      expect(worker.after.heapUsed).toBeLessThanOrEqual(worker.before.heapUsed + 8 * MB);
      expect(worker.after.rss).toBeLessThanOrEqual(worker.before.rss + 32 * MB);
    }
  });

  it('all complete once their events are emitted and their sleeps are over', () => {
    expect(report.suspended.completed).toBe(1000);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });
});
