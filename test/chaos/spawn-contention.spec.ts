/**
 * Part 4 of "nothing is lost", short (20 s with 8 holders is `npm run chaos`): app transactions
 * hold spawns open (an idempotency key, or a new queue's first row), then commit or roll back,
 * while plain spawns go on through the same client and pool (chaos/spawn-contention.ts).
 */
import { formatContention } from '../../chaos/report.js';
import { runSpawnContention, type ContentionReport } from '../../chaos/spawn-contention.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database.js';

let db: TestDatabase | undefined;
let report: ContentionReport;

beforeAll(async () => {
  db = await createTestDatabase();
  report = await runSpawnContention({ databaseUrl: db.url, durationMs: 4000, holders: 4, minHoldMs: 1000, callers: 10, collisions: 3 });
  console.log(`spawns held open (short)\n${formatContention(report)}`);
}, 60_000);

afterAll(async () => {
  await db?.drop();
});

describe('plain spawns while app transactions hold spawns open', () => {
  it('holds some, commits and rolls back', () => {
    expect(report.holds).toBeGreaterThanOrEqual(8);
    expect(report.rolledBack).toBeGreaterThan(0);
    expect(report.spawns).toBeGreaterThan(100);
  });

  it('fails and loses no unrelated spawn, and none waits for a holder', () => {
    expect(report.failed).toBe(0);
    expect(report.lost).toBe(0);
    expect(report.maxMs).toBeLessThan(1000);
  });

  it('has every colliding spawn wait for its holder, then give the right task', () => {
    expect(report.colliding).toBe(3 * report.holds);
    expect(report.waited).toBe(report.colliding);
    expect(report.collidingFailed).toBe(0);
    expect(report.wrongOutcomes).toBe(0);
  });

  it('finds nothing else wrong', () => {
    expect(report.violations).toEqual([]);
  });
});
