/**
 * Part 2 of "nothing is lost": the database goes away.
 * - A dedicated embedded PostgreSQL (its own data folder and port) is stopped for 3 s while
 *   worker processes run tasks, then started again on the same data (chaos/database-outage.ts).
 * - A worker cut off from the database (a TCP proxy in front of it alone) long enough for its
 *   leases to expire is fenced off when it comes back (chaos/lease-fencing.ts).
 */
import { runDatabaseOutage, type OutageReport } from '../../chaos/database-outage.js';
import { runLeaseFencing, type FencingReport } from '../../chaos/lease-fencing.js';
import { formatFencing, formatOutage } from '../../chaos/report.js';
import { createDatabase } from '../../devkit/databases.js';
import { startEmbeddedPostgres, type EmbeddedPostgresServer } from '../../devkit/index.js';
import { cleanUpWorkers } from '../../devkit/processes.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

describe('the PostgreSQL server stopped mid-run and started again on the same data', () => {
  let server: EmbeddedPostgresServer | undefined;
  let report: OutageReport;

  beforeAll(async () => {
    server = await startEmbeddedPostgres({ prefix: 'durable-chaos-pg-' });
    const db = await createDatabase(server.adminUrl, { prefix: 'durable_chaos', testClock: true });
    report = await runDatabaseOutage({
      server, databaseUrl: db.url, tasks: 120, tasksAfter: 20, workers: 2, concurrency: 4, leaseMs: 2000, outageMs: 3000, probes: 10,
    });
    console.log(`database outage\n${formatOutage(report)}`);
  }, 100_000);

  afterAll(async () => {
    await cleanUpWorkers();
    await server?.destroy(); // and its data
  });

  it('rejects every spawn attempted while it is down with DatabaseUnavailableError, without hanging', () => {
    expect(report.outageMs).toBeGreaterThanOrEqual(3000);
    expect(report.probesRejected).toBe(10);
    // A refused connection is answered at once; the bound only rules out a hang.
    expect(report.slowestRejectionMs).toBeLessThan(10_000);
  });

  it('stores none of the rejected spawns', () => {
    expect(report.probesStored).toBe(0);
  });

  it('keeps the processes up: they log, reconnect by themselves, and the app spawns again without a restart', () => {
    expect(report.restarts).toBe(0);
    expect(report.escaped).toBe(0);
    expect(report.reconnectLogLines).toBeGreaterThan(0);
    // Failed claims are retried after longer and longer pauses (100 ms, 200 ms, ...).
    expect(report.maxBackoffMs).toBeGreaterThan(100);
    expect(report.tasks).toBe(120 + 20);
  });

  it('completes every accepted task once, with its result and one checkpoint per step', () => {
    expect(report.lostTasks).toBe(0);
    expect(report.wrongResults).toBe(0);
    expect(report.doubleCompletions).toBe(0);
    expect(report.badCheckpoints).toBe(0);
  });

  it('re-executes only steps whose attempt failed when the server went away: at most one per handler slot', () => {
    expect(report.unexplained).toBe(0);
    expect(report.bound).toBe(2 * 4);
    expect(report.reExecutedSteps).toBeLessThanOrEqual(report.bound);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });
});

describe('a worker cut off from the database past its lease', () => {
  let db: TestDatabase | undefined;
  let report: FencingReport;

  beforeAll(async () => {
    db = await createTestDatabase();
    report = await runLeaseFencing({ databaseUrl: db.url, leaseMs: 1500 });
    console.log(`lease fencing\n${formatFencing(report)}`);
  }, 90_000);

  afterAll(async () => {
    await db?.drop();
  });

  it('the worker that took over completes both tasks: results and checkpoints are its own', () => {
    expect(report.results).toEqual({
      x: { by: 'B', s1: 'A:1', s2: 'B:2', s3: 'B:3' },
      y: { by: 'B', s1: 'A:1', s2: 'A:2', s3: 'A:3' },
    });
  });

  it('the cut-off worker\'s late checkpoint is refused and its handler stops there', () => {
    expect(report.aStoppedX).toMatch(/^threw DurableControlSignal: .*\(lease-lost\)/);
    expect(report.lateCheckpointWrites).toBe(0);
  });

  it('the cut-off worker\'s late completion is refused', () => {
    expect(report.lateCompletionRefused).toBe(true);
  });

  it('the cut-off worker works again afterwards, on its own', () => {
    expect(report.aRecovered).toBe(true);
  });

  it('finds nothing else wrong (runs, completions, checkpoint writes, effects)', () => {
    expect(report.violations).toEqual([]);
  });
});
