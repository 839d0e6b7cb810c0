import type { SpawnResolver } from '../context/claimed-run.js';
import type { ClaimedRun } from '../context/task-context.js';
import type { Notifier, SessionStatement } from '../db/notifier.js';
import { isConnectionError, redact } from '../db/database-errors.js';
import type { Row, Store } from '../db/store.js';
import type { WorkerSettings } from '../options.js';
import type { HandlerRegistry } from '../registry/handler-registry.js';
import { ScheduleTicker } from '../schedules/schedule-ticker.js';
import type { DurableLogger } from '../support/logger.js';
import { timerMs, Wakeable } from '../support/wakeable.js';
import { RunExecutor, toClaimedRun } from './run-executor.js';
import type { DurableWorkerMonitor, WorkerState, WorkerStatus } from './worker-monitor.js';

const SWEEP_EVERY_MS = 100;
/**
 * Claims on their way at once. Each asks for the slots free when it goes out; while the last
 * answer was full, slots that free up while a claim is on its way get a second claim at once
 * instead of waiting for the first one's answer.
 */
const CLAIMS_IN_FLIGHT = 2;
/**
 * How often the loop records that this worker polls its queues (worker_heartbeats; an idle worker
 * whose LISTEN connection holds its lock writes nothing), or every five poll intervals if that is
 * sooner (but see MIN_BEAT_EVERY_MS): the beat also tells the schedule ticker of the schedules
 * made by other processes.
 */
const BEAT_EVERY_MS = 5_000;
/** Not more often than this, however short the poll interval (a beat may write a row per queue). */
const MIN_BEAT_EVERY_MS = 500;

/**
 * Claims runs and executes their handlers, at most `concurrency` at once. It polls, and a
 * NOTIFY, a finished handler or the next due run wakes it early. Database errors are logged
 * and retried with backoff: the loop never dies while the worker is running.
 */
export class Worker {
  private state: Exclude<WorkerState, 'none'> = 'created';
  private loop: Promise<void> | undefined;
  /** Executions, from their claim until their outcome is recorded. */
  private readonly active = new Set<Promise<void>>();
  /** Handlers running now: at most `concurrency` (a slot frees when its handler settles, see `track`). */
  private running = 0;
  private readonly executor: RunExecutor;
  private readonly wakeable = new Wakeable();
  private unsubscribe: (() => void) | undefined;
  /** This worker's liveness lock on the LISTEN connection (`holdWorker`). */
  private hold: SessionStatement | undefined;
  private sweptAt = 0;
  /** Claims made: each starts its fair share at the next queue. */
  private claims = 0;
  /** A claim may have committed without its answer: put back what it took before claiming again. */
  private releasePending = false;
  private lastClaimAt: Date | undefined;
  private lastError: WorkerStatus['lastError'];
  private beatAt = 0;
  private readonly beatEveryMs: number;
  private beatFailed = false;
  /** Claims on their way, and the slots they asked for. */
  private readonly claiming = new Set<Promise<void>>();
  private reserved = 0;
  /** No claim before this time: after a short claim (until the next due run) or an error (its backoff). */
  private claimAt = 0;
  /** The last claim's answer was full: more runs are likely due, so two claims may be on their way. */
  private backlog = false;
  /** The last claim's answer was short with nothing due within a poll interval. */
  private nothingDue = false;
  /** Counts nudges: one that comes while a claim is on its way cancels the hold its short answer would set. */
  private nudges = 0;
  private backoffMs = 0;
  /** Fires the schedules of the polled queues (needs the client's spawn resolution). */
  private readonly ticker: ScheduleTicker | undefined;

  constructor(
    private readonly store: Store,
    registry: HandlerRegistry,
    private readonly settings: WorkerSettings,
    private readonly logger: DurableLogger,
    private readonly notifier?: Notifier,
    monitor?: DurableWorkerMonitor,
    spawnRow?: SpawnResolver,
    /** Writes what the handlers declare (limits, schedules) before the first claim; retried like a claim. */
    private declare?: () => Promise<void>,
  ) {
    for (const warning of registry.unpolled(settings.queues)) logger.warn(warning);
    this.beatEveryMs = Math.min(BEAT_EVERY_MS, Math.max(settings.pollIntervalMs * 5, MIN_BEAT_EVERY_MS));
    this.executor = new RunExecutor(store, registry, settings, logger, monitor, spawnRow);
    monitor?.attach(() => this.status());
    if (spawnRow) {
      this.ticker = new ScheduleTicker(store, settings.queues, spawnRow, logger);
    }
  }

  start(): void {
    if (this.state !== 'created') return;
    this.state = 'running';
    const { wakeup, cancel } = this.store.sql.channels;
    this.unsubscribe = this.notifier?.subscribe((notification) => {
      if (notification?.channel === cancel) this.executor.cancelled(notification.payload);
      else if (!notification || (notification.channel === wakeup && this.settings.queues.includes(notification.payload))) {
        this.nudge();
      }
    });
    // While the LISTEN connection lives, it holds this worker's lock: an idle worker's beat writes nothing.
    const { workerId } = this.settings;
    this.hold = this.notifier?.onSession(this.store.sql.holdWorker(workerId), this.store.sql.releaseWorker(workerId));
    this.loop = this.run();
    if (!this.declare) this.ticker?.start();
  }

  /**
   * Stops claiming and waits up to `shutdownTimeoutMs` for running handlers. Then it gives up on
   * those still running: each is stopped (its next ctx call throws), the runs of those that were
   * not inside a step or a ctx call are put back without using an attempt, and the others keep
   * their lease until it expires (a failed attempt, retried elsewhere).
   */
  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopping';
    this.wakeable.wake();
    await Promise.all([this.loop, this.ticker?.stop()]);
    // Not while the database is in trouble (the stop must not wait for it): the beat expires then.
    if (this.beatAt > 0 && !this.beatFailed && !this.lastError) {
      await this.store.query(this.store.sql.workerGone(this.settings.workerId, this.settings.queues)).catch(() => undefined);
    }
    // Not awaited: a connection in trouble must not hold up the stop (its end releases the lock too).
    void this.hold?.end();
    if (this.releasePending) {
      await this.release().catch((error: unknown) => {
        this.logger.error(`could not put back the runs of a claim whose answer was lost: ${redact((error as Error).message)}`);
      });
    }
    if (this.active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timerMs(this.settings.shutdownTimeoutMs));
      });
      const outcome = await Promise.race([Promise.allSettled([...this.active]), timeout]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        const { released, left } = await this.executor.abandon();
        this.logger.warn(
          `${released + left} task(s) still running after shutdownTimeoutMs were stopped: ${released} put back without ` +
          `using an attempt (not inside a step), ${left} left to their lease (it expires as a failed attempt and another worker retries them)`,
        );
      }
    }
    // Only now: a cancellation must still reach the handlers that are draining.
    this.unsubscribe?.();
    this.state = 'stopped';
  }

  status(): WorkerStatus {
    const { workerId, queues, concurrency } = this.settings;
    return {
      state: this.state, workerId, queues: [...queues], concurrency, inFlight: this.running,
      lastClaimAt: this.lastClaimAt, lastError: this.lastError,
    };
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    while (this.declare && this.state === 'running') {
      try {
        await this.declare();
        this.declare = undefined;
        this.ticker?.start();
      } catch (error) {
        backoffMs = Math.min(Math.max(backoffMs * 2, 100), 10_000);
        this.lastError = { message: redact((error as Error).message), at: new Date() };
        this.logger.error(`writing the declared limits and schedules failed, retrying in ${backoffMs} ms: ${this.lastError.message}`);
        await this.wakeable.wait(backoffMs);
      }
    }
    // The last wait was a whole poll interval that nothing cut short: the next claim is an idle poll.
    let idlePoll = false;
    // The last idle poll was a beat or a ping instead of a claim: the next one claims.
    let stoodIn = false;
    while (this.state === 'running') {
      // An idle worker sends one statement per poll interval: at a poll's turn, its beat when due,
      // or the LISTEN connection's ping when due within a few polls, stands in for the claim, but
      // never for two polls in a row. A busy worker beats when due; an idle one waits for a turn
      // (at most two polls: a beat lives for three) unless its beat is overdue.
      const sinceBeat = Date.now() - this.beatAt;
      const idle = this.nothingDue && this.active.size === 0 && !this.releasePending;
      const beatDue = sinceBeat >= this.beatEveryMs;
      if (beatDue && (!idle || sinceBeat >= this.beatEveryMs + 2 * this.settings.pollIntervalMs)) {
        await this.beat();
      } else if (idle && idlePoll && this.claiming.size === 0 && !stoodIn &&
        (beatDue || await this.notifier?.pingIfDue(3 * this.settings.pollIntervalMs))) {
        if (beatDue) await this.beat();
        stoodIn = true;
        idlePoll = !(await this.wakeable.wait(this.settings.pollIntervalMs));
        continue;
      }
      stoodIn = false;
      // Before claiming again: a lost claim's runs must not wait for their lease. Not while
      // another claim is on its way: the runs it took are not executing yet, and would be put back.
      if (this.releasePending && this.claiming.size === 0) {
        try {
          await this.release();
        } catch (error) {
          this.claimFailed(error);
        }
      }
      const { concurrency } = this.settings;
      // Outcomes being recorded hold no slot, but at most `concurrency` of them at once.
      const free = Math.min(concurrency - this.running, 2 * concurrency - this.active.size) - this.reserved;
      const now = Date.now();
      // A second claim only while the last answer was full: an idle worker sends one at a time.
      const room = this.claiming.size === 0 || (this.backlog && this.claiming.size < CLAIMS_IN_FLIGHT);
      if (free > 0 && room && !this.releasePending && now >= this.claimAt) {
        this.claim(free);
        continue;
      }
      if (this.state !== 'running') break;
      const waitMs = this.claimAt > now ? this.claimAt - now : this.settings.pollIntervalMs;
      const woken = await this.wakeable.wait(waitMs);
      idlePoll = !woken && this.claiming.size === 0 && this.nothingDue;
    }
    // What a claim on its way takes still runs (stop() waits for it, or puts it back).
    await Promise.all(this.claiming);
  }

  /**
   * Claims up to `limit` runs without waiting for them: the loop can send the next claim while
   * this one is on its way, so a claim overlaps the handlers and writes of the runs before it.
   * Its slots are reserved until it answers; a short answer holds the next claim until the next
   * due run or a wake-up, an error until its backoff ends.
   */
  private claim(limit: number): void {
    this.reserved += limit;
    const claiming: Promise<void> = this.claimRuns(limit).finally(() => {
      this.reserved -= limit;
      this.claiming.delete(claiming);
      this.wakeable.wake();
    });
    this.claiming.add(claiming);
  }

  private async claimRuns(limit: number): Promise<void> {
    // Sweeping expired leases and policies at most every SWEEP_EVERY_MS keeps busy claims lean.
    const sweep = Date.now() - this.sweptAt >= SWEEP_EVERY_MS;
    if (sweep) this.sweptAt = Date.now();
    const nudges = this.nudges;
    try {
      const rows = await this.store.query(this.store.sql.claim({
        queues: this.settings.queues, workerId: this.settings.workerId, limit, leaseMs: this.settings.leaseMs, sweep,
        firstQueue: this.claims++ % this.settings.queues.length,
      }));
      this.lastClaimAt = new Date();
      this.lastError = undefined;
      this.backoffMs = 0;
      let claimed = 0;
      let waitMs = this.settings.pollIntervalMs;
      for (const row of rows) {
        if (row.run_id === null) {
          waitMs = nextWait(row, this.settings.pollIntervalMs);
        } else {
          claimed += 1;
          this.track(toClaimedRun(row));
        }
      }
      this.backlog = claimed === limit;
      this.nothingDue = claimed < limit && waitMs >= this.settings.pollIntervalMs;
      // A handler that finished meanwhile may have freed a slot of a limit (or a notification
      // announced a run) after this claim looked: look again at once, as a nudge would have.
      this.claimAt = this.backlog || this.nudges !== nudges ? 0 : Date.now() + waitMs;
    } catch (error) {
      if (sweep) this.sweptAt = 0;
      this.claimFailed(error);
    }
  }

  private claimFailed(error: unknown): void {
    // The claim may have committed (its answer lost): what it took must not wait for its lease.
    if ((error as Error)?.name === 'OutcomeUnknownError' || isConnectionError(error)) this.releasePending = true;
    this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 100), 10_000);
    const message = redact((error as Error).message);
    this.lastError = { message, at: new Date() };
    this.logger.error(`claiming failed, retrying in ${this.backoffMs} ms: ${message}`);
    this.claimAt = Date.now() + this.backoffMs;
    this.backlog = false;
    this.nothingDue = false;
  }

  /** A notification or a finished handler ends a claim's hold; a claim's own answer only wakes the loop. */
  private nudge(): void {
    this.nudges += 1;
    this.claimAt = 0;
    this.wakeable.wake();
  }

  /**
   * Records that this worker polls its queues: alive while its LISTEN connection holds its lock,
   * else for three beats or poll intervals (at least 30 s) after the beat: `waitingFor` says
   * 'noWorker' for a due task of a queue no live worker polls. A failed beat (say, migrations not
   * applied) is logged once and never stops claiming.
   */
  private async beat(): Promise<void> {
    this.beatAt = Date.now();
    const { workerId, queues, concurrency, pollIntervalMs } = this.settings;
    const ttlMs = Math.max(30_000, 3 * Math.max(this.beatEveryMs, pollIntervalMs));
    try {
      const row = await this.store.one(this.store.sql.workerBeat({ workerId, queues, concurrency, inFlight: this.running, ttlMs }));
      this.ticker?.observe(row);
      // Nobody holds the lock (the LISTEN connection's try came while an old session of this
      // worker still held it, say): try again, so that idle beats stop writing.
      if (row.held === false) this.hold?.again();
      this.beatFailed = false;
    } catch (error) {
      if (!this.beatFailed && !isConnectionError(error)) {
        this.logger.warn(`could not record this worker's heartbeat (tasks of its queues may show waitingFor 'noWorker'): ${redact((error as Error).message)}`);
      }
      this.beatFailed = true;
    }
  }

  /**
   * Puts back the runs this worker holds in the database but is not executing (claimed by a
   * claim whose answer was lost), without using an attempt. If it throws, the loop tries again
   * before its next claim.
   */
  private async release(): Promise<void> {
    try {
      const row = await this.store.one(this.store.sql.releaseRuns(this.settings.workerId, this.executor.heldRuns()));
      this.releasePending = false;
      if ((row.released as number) > 0) {
        this.logger.warn(`put back ${row.released as number} run(s) claimed by a claim whose answer was lost, without using an attempt`);
      }
    } catch (error) {
      throw Object.assign(new Error(`could not put back the runs of a claim whose answer was lost: ${(error as Error)?.message}`), {
        name: 'ReleaseFailed',
      });
    }
  }

  /**
   * Executes a claimed run. Its slot frees as soon as its handler settles, while its outcome is
   * still being recorded: the next run's handler starts during that round trip instead of after it.
   * A freed slot only wakes the loop, which claims at once if the last answer was full; a short
   * answer's hold (nothing due, or a limit full) ends when the outcome is written (the nudge),
   * since the database counts the run as running until then.
   */
  private track(run: ClaimedRun): void {
    this.running += 1;
    let holdsSlot = true;
    const freeSlot = () => {
      if (!holdsSlot) return;
      holdsSlot = false;
      this.running -= 1;
      this.wakeable.wake();
    };
    const execution = this.executor.execute(run, freeSlot);
    this.active.add(execution);
    void execution.finally(() => {
      this.active.delete(execution);
      freeSlot();
      this.nudge();
    });
  }
}

/** Until the next due run, but never longer than the poll interval. */
function nextWait(row: Row, pollIntervalMs: number): number {
  const due = row.next_due_at as Date | null;
  if (!due) return pollIntervalMs;
  // Due already but not claimed: another worker holds it, so look again shortly.
  return Math.min(pollIntervalMs, Math.max(due.getTime() - (row.db_now as Date).getTime(), 5));
}
