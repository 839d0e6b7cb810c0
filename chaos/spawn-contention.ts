/**
 * Part 4, spawns held open (issue 13, item 3): app transactions spawn with `manager` (an
 * idempotency key; every third one the first task of a new queue) and stay open, then commit or
 * roll back, while plain `client.spawn` calls go on through the same client and the same pool
 * (durable on the app's DataSource, as in the sample app). Each hold also gets plain spawns that
 * collide with it (its key, or its new queue): they have to wait for it.
 *
 * What is proven:
 * - no unrelated spawn fails, none is lost (every task returned is in the database), and none
 *   waits for a holder: each takes less than the shortest hold;
 * - every colliding spawn returns only after its holder ended, with the holder's task after a
 *   commit, or else one task of its own (a single one per key).
 */
import { DataSource } from 'typeorm';
import { DurableClient, type SpawnResult } from '../lib/index.js';
import { sleep } from '../devkit/wait.js';

export interface ContentionOptions {
  databaseUrl: string;
  durationMs: number;
  /** Transactions holding a spawn open at once. */
  holders: number;
  /** Each stays open from minHoldMs to twice that. */
  minHoldMs: number;
  /** Plain spawns in flight at once, unrelated to the holders. */
  callers: number;
  /** Plain spawns colliding with each hold. */
  collisions: number;
  /** Every n-th hold rolls back (default 4). */
  rollbackEvery?: number;
  log?: (line: string) => void;
}

export interface ContentionReport {
  durationMs: number;
  holds: number;
  rolledBack: number;
  /** Unrelated spawns, and how many of them failed, were lost, took as long as a hold. */
  spawns: number;
  failed: number;
  lost: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  colliding: number;
  /** Colliding spawns that returned only after their holder ended (all of them, if right). */
  waited: number;
  collidingFailed: number;
  wrongOutcomes: number;
  /** The longest a colliding spawn took after its holder ended. */
  maxAfterHolderMs: number;
  violations: string[];
}

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

export async function runSpawnContention(options: ContentionOptions): Promise<ContentionReport> {
  const log = options.log ?? (() => undefined);
  const rollbackEvery = options.rollbackEvery ?? 4;
  const dataSource = new DataSource({ type: 'postgres', url: options.databaseUrl, extra: { max: options.holders + 12 } });
  await dataSource.initialize();
  const client = await DurableClient.connect({ dataSource, logger: quiet });
  const violations: string[] = [];
  const latencies: number[] = [];
  const taskIds: string[] = [];
  const errors: string[] = [];
  let holds = 0, rolledBack = 0, colliding = 0, waited = 0, collidingFailed = 0, wrongOutcomes = 0, maxAfterHolderMs = 0;
  const wrong = (what: string) => {
    wrongOutcomes += 1;
    if (wrongOutcomes <= 5) violations.push(what);
  };
  try {
    await client.spawn('contention', { warm: true }); // the queue 'default' exists
    const started = Date.now();
    const end = started + options.durationMs;
    let sequence = 0;

    const caller = async () => {
      while (Date.now() < end) {
        const n = sequence++;
        const spawnOptions = n % 50 === 0 ? { queue: `unrelated-${n}` } : n % 2 === 0 ? { idempotencyKey: `unrelated-${n}` } : {};
        const at = Date.now();
        try {
          taskIds.push((await client.spawn('contention', { n }, spawnOptions)).taskId);
        } catch (error) {
          errors.push(`${(error as Error).name}: ${(error as Error).message}`);
        }
        latencies.push(Date.now() - at);
      }
    };

    const holder = async (h: number) => {
      for (let round = 0; Date.now() < end; round++) {
        const hold = holds++;
        const key = `held-${h}-${round}`;
        const queue = hold % 3 === 0 ? `fresh-${h}-${round}` : 'default';
        const rollback = hold % rollbackEvery === rollbackEvery - 1;
        const runner = dataSource.createQueryRunner();
        await runner.connect();
        await runner.startTransaction();
        let endedAt = Infinity;
        let held: SpawnResult;
        try {
          held = await client.spawn('contention', { held: key }, { idempotencyKey: key, queue, manager: runner.manager });
          // The first collides on the key; the others too (queue 'default') or on the new queue.
          const collisions = Array.from({ length: options.collisions }, async (_, c) => {
            const keyed = c === 0 || queue === 'default';
            const spawned = await client.spawn('contention', { collide: key, c }, keyed ? { idempotencyKey: key, queue } : { queue });
            return { keyed, spawned, at: Date.now() };
          });
          colliding += collisions.length;
          await sleep(options.minHoldMs * (1 + Math.random()));
          endedAt = Date.now();
          await (rollback ? runner.rollbackTransaction() : runner.commitTransaction());
          if (rollback) rolledBack += 1;
          const outcomes = await Promise.allSettled(collisions);
          const keyedIds = new Set<string>();
          let keyedCreated = 0;
          for (const outcome of outcomes) {
            if (outcome.status === 'rejected') {
              collidingFailed += 1;
              violations.push(`a spawn colliding with ${key} failed: ${(outcome.reason as Error).message}`);
              continue;
            }
            const { keyed, spawned, at } = outcome.value;
            if (at >= endedAt) waited += 1;
            else wrong(`a spawn colliding with ${key} returned before its holder ended`);
            maxAfterHolderMs = Math.max(maxAfterHolderMs, at - endedAt);
            if (!keyed) {
              if (!spawned.created) wrong(`a keyless spawn into ${queue} was not created`);
              continue;
            }
            keyedIds.add(spawned.taskId);
            if (spawned.created) keyedCreated += 1;
          }
          const expected = rollback ? [...keyedIds].every((id) => id !== held.taskId) && keyedCreated === 1 : keyedIds.has(held.taskId) && keyedCreated === 0;
          if (keyedIds.size > 1 || (keyedIds.size === 1 && !expected)) {
            wrong(`the spawns of key ${key} after a ${rollback ? 'rollback' : 'commit'}: ${keyedIds.size} task(s), ${keyedCreated} created`);
          }
        } finally {
          if (runner.isTransactionActive) await runner.rollbackTransaction();
          await runner.release();
        }
      }
    };

    await Promise.all([
      ...Array.from({ length: options.callers }, caller),
      ...Array.from({ length: options.holders }, (_, h) => holder(h)),
    ]);
    const durationMs = Date.now() - started;

    const found = await dataSource.query(`select count(*)::int as n from durable.tasks where id = any($1::uuid[])`, [taskIds]);
    const lost = taskIds.length - (found[0].n as number);
    const sorted = [...latencies].sort((a, b) => a - b);
    const maxMs = sorted.at(-1) ?? 0;
    if (errors.length > 0) violations.push(`${errors.length} unrelated spawn(s) failed, e.g. ${errors.slice(0, 3).join('; ')}`);
    if (lost > 0) violations.push(`${lost} unrelated spawn(s) returned a task that is not in the database`);
    const slow = sorted.filter((ms) => ms >= options.minHoldMs).length;
    if (slow > 0) violations.push(`${slow} unrelated spawn(s) took as long as a hold (${options.minHoldMs} ms or more; the slowest ${maxMs} ms)`);
    if (wrongOutcomes > 5) violations.push(`... ${wrongOutcomes} wrong outcomes of colliding spawns in all`);
    log(`spawn contention: ${latencies.length} unrelated spawns and ${holds} holds in ${durationMs} ms`);
    return {
      durationMs, holds, rolledBack, spawns: latencies.length, failed: errors.length, lost,
      p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs,
      colliding, waited, collidingFailed, wrongOutcomes, maxAfterHolderMs, violations,
    };
  } finally {
    await client.close();
    await dataSource.destroy();
  }
}
